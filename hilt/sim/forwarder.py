"""A per-node TCP forwarder in front of the shared BMC emulator.

One sushy-emulator serves every node's system, so a fault that must hit ONE node's BMC lives here:
each node's BMC URL is its own forwarder port. In ``blackhole`` mode connections are accepted and never
answered, which is what a hung BMC looks like to a client (a read timeout, not a refusal).
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpForwarder:
    """Forwards 127.0.0.1:<port> to ``target``; ``blackhole`` makes it accept and stay silent."""

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1", port: int = 0):
        self.target = target
        self.blackhole = False
        self._sock = socket.create_server((host, port))
        self.port = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True, name=f"fwd-{self.port}").start()

    def set_blackhole(self, on: bool) -> None:
        self.blackhole = on
        if not on:
            with self._lock:
                held, self._held = self._held, []
            for conn in held:
                with contextlib.suppress(OSError):
                    conn.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.close()
        self.set_blackhole(False)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self.blackhole:
                with self._lock:
                    self._held.append(conn)
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        t = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        t.start()
        _pump(client, upstream)
        t.join(timeout=30)
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
