"""Reaching a unix socket on a remote node: a local unix socket whose connections are relayed over the node's SSH.

How, and why this way: gRPC (grpcio) runs on the controller, where ``hilt[k8s]`` is installed; the kubelet's
sockets are on the node. For each connection gRPC opens to the local socket, the relay starts a small
standard-library Python script on the node over the node's existing SSH connection (an exec channel, as the
probes run) that connects to the node's socket and copies bytes both ways; the relay copies between the
channel and the local connection. So the node needs only its Python (``ssh.python``), no grpcio and no other
package, and sshd needs no socket forwarding: OpenSSH's ``direct-streamlocal`` forwarding is off on hardened
nodes (``AllowStreamLocalForwarding no``, or ``DisableForwarding``) and paramiko's client cannot open such a
channel. Running a whole gRPC client on the node instead would need grpcio there.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: Runs on the node: connect to argv[1] and copy stdin -> socket, socket -> stdout. Exit 3: cannot connect.
RELAY_SCRIPT = r"""
import os, socket, sys, threading
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as e:
    sys.stderr.write("cannot connect to %s: %s\n" % (sys.argv[1], e.strerror or e))
    sys.exit(3)
def up():
    while True:
        b = os.read(0, 65536)
        if not b:
            s.shutdown(socket.SHUT_WR)
            return
        s.sendall(b)
threading.Thread(target=up, daemon=True).start()
out = sys.stdout.buffer
while True:
    b = s.recv(65536)
    if not b:
        break
    out.write(b)
    out.flush()
"""


class StreamingNode(Protocol):
    """A node that can start a program whose stdin/stdout the caller streams (hilt.node.ssh.Node)."""

    name: str
    python: str

    def open_stream(self, argv: Sequence[str]) -> Any: ...


class SocketRelay:
    """``with SocketRelay(node, "/var/lib/kubelet/...sock") as relay:`` ``grpc.insecure_channel(relay.target)``.

    The local socket lives in a fresh 0700 directory of this machine's temporary directory, removed on exit
    with every relayed connection.
    """

    def __init__(self, node: StreamingNode, remote_path: str):
        self.node = node
        self.remote_path = remote_path
        self._dir: Path | None = None
        self._listener: socket.socket | None = None
        self._closing = threading.Event()
        self._open: list[Any] = []
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        assert self._dir is not None, "use SocketRelay as a context manager"
        return self._dir / "s"

    @property
    def target(self) -> str:
        """The gRPC target of the relayed socket."""
        return f"unix:{self.path}"

    def __enter__(self) -> SocketRelay:
        self._dir = Path(tempfile.mkdtemp(prefix="hilt-relay-"))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(8)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept, name=f"relay-{self.node.name}", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            opened, self._open = self._open, []
        for thing in opened:
            with contextlib.suppress(Exception):
                thing.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closing.is_set():
            try:
                local, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                channel = self.node.open_stream([self.node.python, "-c", RELAY_SCRIPT, self.remote_path])
            except Exception as exc:  # noqa: BLE001 - the gRPC call sees a closed connection; say why here
                log.warning("%s: relay to %s not started: %s", self.node.name, self.remote_path, exc)
                local.close()
                continue
            with self._lock:
                self._open += [local, channel]
            threading.Thread(target=_pump_to_channel, args=(local, channel), daemon=True).start()
            threading.Thread(target=_pump_to_local, args=(channel, local), daemon=True).start()


def _pump_to_channel(local: socket.socket, channel: Any) -> None:
    try:
        while True:
            data = local.recv(65536)
            if not data:
                break
            channel.sendall(data)
        channel.shutdown_write()
    except (OSError, EOFError, ValueError):
        pass


def _pump_to_local(channel: Any, local: socket.socket) -> None:
    try:
        while True:
            data = channel.recv(65536)
            if not data:
                break
            local.sendall(data)
    except (OSError, EOFError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            local.shutdown(socket.SHUT_RDWR)
        local.close()
        with contextlib.suppress(Exception):
            channel.close()
