"""SSH access to a node: one paramiko connection per node per session, reused for every command.

Host keys are verified (pinned in rigs.yaml or from known_hosts); an unknown or changed key is an
error showing the fingerprint, never a silent accept. Commands are argv lists joined with
``shlex.join``, so no value from rigs.yaml or from a node ever reaches a shell unquoted.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shlex
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from hilt.errors import ConfigError, NodeError
from hilt.rig.config import NodeConfig, host_key_problem

log = logging.getLogger(__name__)

_KEEPALIVE_S = 15


class HostKeyError(NodeError):
    """The node's host key is unknown or changed: never retried, never accepted silently."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...] | str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _PinnedHostKey(paramiko.MissingHostKeyPolicy):
    """Refuses every key that is not the pinned one (paramiko calls this only for unknown keys)."""

    def __init__(self, node: str):
        self.node = node

    def missing_host_key(self, client, hostname, key):  # noqa: ANN001 - paramiko's signature
        raise HostKeyError(
            f"node {self.node}: host key of {hostname} is not known: {key.get_name()} {fingerprint(key)}; "
            "pin it in rigs.yaml (ssh.host_key) or add it to the known_hosts file"
        )


def parse_host_key(host_key: str) -> paramiko.PKey:
    """The key pinned in rigs.yaml's ``ssh.host_key`` (``TYPE BASE64``), as paramiko compares it with the
    key a node presents; a malformed one is a ConfigError naming the field."""
    problem = host_key_problem(host_key)  # rigs.yaml is checked at load; a key built in code is checked here
    if problem:
        raise ConfigError(f"ssh.host_key {host_key[:40]!r}: {problem}")
    parts = host_key.split()
    return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1]))


class Node:
    """A node's OS, reached over SSH. Thread-safe: paramiko multiplexes channels on one transport."""

    def __init__(self, name: str, config: NodeConfig):
        self.name = name
        self.config = config
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ connection

    @property
    def python(self) -> str:
        return self.config.ssh.python

    @property
    def address(self) -> str:
        return self.config.fabric_address

    def _host_keys_for(self, client: paramiko.SSHClient) -> None:
        ssh = self.config.ssh
        hostname = ssh.host if ssh.port == 22 else f"[{ssh.host}]:{ssh.port}"
        if ssh.host_key:
            pinned = parse_host_key(ssh.host_key)
            client.get_host_keys().add(hostname, pinned.get_name(), pinned)
        if ssh.known_hosts:
            try:
                client.load_host_keys(str(Path(ssh.known_hosts).expanduser()))
            except OSError as exc:
                raise NodeError(f"node {self.name}: cannot read known_hosts {ssh.known_hosts}: {exc}") from None
        if not ssh.host_key and not ssh.known_hosts:
            client.load_system_host_keys()

    def connect(self) -> None:
        """Open the session's connection (idempotent)."""
        with self._lock:
            if self._client is not None and self._transport_alive():
                return
            self._close_locked()
            ssh = self.config.ssh
            client = paramiko.SSHClient()
            self._host_keys_for(client)
            client.set_missing_host_key_policy(_PinnedHostKey(self.name))
            try:
                client.connect(
                    ssh.host,
                    port=ssh.port,
                    username=ssh.user,
                    key_filename=str(Path(ssh.key).expanduser()) if ssh.key else None,
                    timeout=ssh.connect_timeout_s,
                    banner_timeout=ssh.connect_timeout_s,
                    auth_timeout=ssh.connect_timeout_s,
                    allow_agent=False,
                    look_for_keys=ssh.key is None,
                )
            except NodeError:
                client.close()
                raise
            except paramiko.BadHostKeyException as exc:
                client.close()
                raise HostKeyError(
                    f"node {self.name}: host key of {ssh.host}:{ssh.port} CHANGED: got {exc.key.get_name()} "
                    f"{fingerprint(exc.key)}, expected {fingerprint(exc.expected_key)}; refusing to connect"
                ) from None
            except (OSError, paramiko.SSHException, EOFError) as exc:
                client.close()
                raise NodeError(f"node {self.name}: ssh {ssh.user}@{ssh.host}:{ssh.port} failed: {exc}") from None
            transport = client.get_transport()
            if transport is not None:
                transport.set_keepalive(_KEEPALIVE_S)
            self._client = client

    def _transport_alive(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        return bool(transport and transport.is_active())

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Node:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_channel(self) -> paramiko.Channel:
        """A session channel; reconnects once when the connection dropped between commands."""
        for attempt in (1, 2):
            self.connect()
            assert self._client is not None
            try:
                transport = self._client.get_transport()
                if transport is None or not transport.is_active():
                    raise paramiko.SSHException("transport closed")
                return transport.open_session(timeout=self.config.ssh.connect_timeout_s)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                log.warning("node %s: connection dropped (%s); reconnecting", self.name, exc)
                self.close()
                if attempt == 2:
                    raise NodeError(f"node {self.name}: cannot open an SSH channel: {exc}") from None
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ commands

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        check: bool = True,
        on_output: Callable[[str], None] | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run an argv on the node (quoted with shlex.join) and wait for it, bounded by ``timeout``."""
        if isinstance(argv, str):
            raise TypeError("Node.run takes an argv list; use run_script for a fixed script")
        command = shlex.join(argv)
        return self._execute(command, tuple(argv), timeout=timeout, check=check, on_output=on_output,
                             stdin=stdin)

    def run_script(self, script: str, *, timeout: float = 60.0, check: bool = True) -> CommandResult:
        """Run a fixed script of ours with ``bash -s`` (the script travels on stdin, not in the command)."""
        return self._execute("bash -s", "bash -s", timeout=timeout, check=check, on_output=None,
                             stdin=script.encode())

    def _execute(
        self,
        command: str,
        shown: tuple[str, ...] | str,
        *,
        timeout: float,
        check: bool,
        on_output: Callable[[str], None] | None,
        stdin: bytes | None,
    ) -> CommandResult:
        started = time.monotonic()
        channel = self._open_channel()
        out: list[bytes] = []
        err: list[bytes] = []
        partial = b""
        try:
            channel.settimeout(1.0)
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin)
                channel.shutdown_write()
            while True:
                if time.monotonic() - started > timeout:
                    raise NodeError(f"node {self.name}: command timed out after {timeout:.0f} s: {_short(shown)}")
                progressed = False
                if channel.recv_ready():
                    chunk = channel.recv(65536)
                    out.append(chunk)
                    progressed = True
                    if on_output is not None:
                        partial += chunk
                        *lines, partial = partial.split(b"\n")
                        for line in lines:
                            on_output(line.decode(errors="replace"))
                if channel.recv_stderr_ready():
                    err.append(channel.recv_stderr(65536))
                    progressed = True
                if _finished(channel):
                    break
                if channel.closed and not progressed:
                    break
                if not progressed:
                    time.sleep(0.01)
            exit_code = channel.recv_exit_status()
        except (OSError, paramiko.SSHException, EOFError) as exc:
            self.close()
            raise NodeError(f"node {self.name}: connection lost during {_short(shown)}: {exc}") from None
        finally:
            channel.close()
        if on_output is not None and partial:
            on_output(partial.decode(errors="replace"))
        if exit_code == -1:
            self.close()
            raise NodeError(f"node {self.name}: connection lost during {_short(shown)} (no exit status)")
        result = CommandResult(
            argv=shown,
            exit_code=exit_code,
            stdout=b"".join(out).decode(errors="replace"),
            stderr=b"".join(err).decode(errors="replace"),
            duration_s=time.monotonic() - started,
        )
        if check and exit_code != 0:
            raise NodeError(
                f"node {self.name}: {_short(shown)} exited {exit_code}: {result.stderr.strip()[-300:]}"
            )
        return result

    def open_stream(self, argv: Sequence[str]) -> paramiko.Channel:
        """Start an argv whose stdin and stdout the caller streams (``sendall``/``recv``/``shutdown_write``/
        ``close``): a byte pipe to a program on the node, e.g. a relay to one of its unix sockets (hilt.k8s.relay).
        """
        channel = self._open_channel()
        try:
            channel.exec_command(shlex.join(argv))
        except (OSError, paramiko.SSHException, EOFError) as exc:
            channel.close()
            raise NodeError(f"node {self.name}: cannot start {_short(tuple(argv))}: {exc}") from None
        return channel

    def read_files(self, paths: Sequence[str], *, timeout: float = 60.0) -> dict[str, str | None]:
        """Read many small files in one round trip; a missing or unreadable file maps to None."""
        if not paths:
            return {}
        marker = "@@hilt-file@@"
        script = "\n".join(
            f"if [ -r {shlex.quote(p)} ]; then printf '%s %s\\n' {marker} {shlex.quote(p)}; "
            f"base64 -w0 < {shlex.quote(p)}; echo; fi"
            for p in paths
        )
        result = self.run_script(script, timeout=timeout, check=False)
        found: dict[str, str | None] = dict.fromkeys(paths)
        current: str | None = None
        for line in result.stdout.splitlines():
            if line.startswith(marker + " "):
                current = line[len(marker) + 1:]
            elif current is not None:
                found[current] = base64.b64decode(line).decode(errors="replace")
                current = None
        return found

    def upload(self, local: str | Path, remote: str) -> None:
        """SFTP a file (a probe script) to the node; reconnects once, like ``run``, if the connection dropped."""
        if not Path(local).is_file():
            raise NodeError(f"node {self.name}: cannot upload {local}: no such file here")
        for attempt in (1, 2):
            self.connect()
            assert self._client is not None
            try:
                with self._client.open_sftp() as sftp:
                    sftp.put(str(local), remote)
                return
            except (OSError, paramiko.SSHException, EOFError) as exc:
                # An SFTP status error (no such directory, permission) is an OSError with an errno; a dropped
                # connection is an EOFError/SSHException, or shows as a dead transport (it may not be dead *yet*).
                dropped = isinstance(exc, (paramiko.SSHException, EOFError)) or not self._transport_alive()
                if dropped and attempt == 1:
                    log.warning("node %s: connection dropped during upload (%s); reconnecting", self.name, exc)
                    self.close()
                    continue
                raise NodeError(
                    f"node {self.name}: upload of {Path(local).name} to {remote} failed: {exc}"
                ) from None

    def boot_id(self, timeout: float = 15.0) -> str:
        return self.run(["cat", "/proc/sys/kernel/random/boot_id"], timeout=timeout).stdout.strip()


def _finished(channel: paramiko.Channel) -> bool:
    """Done means exited AND the output has ended: OpenSSH sends exit-status as soon as the process ends, which
    can be before the last of its output has crossed the channel, so stopping at the exit status alone drops the
    tail. Like `ssh host cmd`, wait for EOF too."""
    drained = not channel.recv_ready() and not channel.recv_stderr_ready()
    return channel.exit_status_ready() and channel.eof_received and drained


def _short(shown: tuple[str, ...] | str) -> str:
    text = shown if isinstance(shown, str) else shlex.join(shown)
    return text if len(text) <= 120 else text[:117] + "..."


def probe_ssh(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether an SSH server answers with a banner at host:port (cheap readiness check)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False
