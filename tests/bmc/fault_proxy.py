"""A fault proxy in front of a real Redfish service: plain HTTP on 127.0.0.1, forwarding every request to the
service (sushy-emulator over HTTPS, its CA verified) except those a rule answers itself.

What sushy-emulator cannot be made to do, a rule does in the same protocol a BMC speaks: an answer with a given
status and body (an empty body included) to one method on one path. Everything else, auth included, is the
emulator's own answer, byte for byte; a ``Location`` that names the emulator is rewritten to name the proxy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "server", "date"}


@dataclass(frozen=True)
class Rule:
    """Answer ``method`` on a path ending with ``path_suffix`` with ``status`` and ``body`` (bytes as sent)."""

    method: str
    path_suffix: str
    status: int
    body: bytes = b""
    content_type: str | None = None


@dataclass
class FaultProxy:
    url: str
    rules: list[Rule]
    upstream: str
    answered: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status) a rule answered
    forwarded: list[tuple[str, str, int]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def start_fault_proxy(upstream: str, ca_path: Path | str, rules: list[Rule]) -> FaultProxy:
    """Serve on an ephemeral 127.0.0.1 port until ``stop()``."""
    session = requests.Session()
    session.trust_env = False  # loopback only: never through a proxy from the environment
    session.verify = str(ca_path)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: tests read proxy.answered / forwarded
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            for rule in proxy.rules:
                if rule.method == self.command and path.endswith(rule.path_suffix):
                    with lock:
                        proxy.answered.append((self.command, path, rule.status))
                    self._send(rule.status, rule.body, {"Content-Type": rule.content_type} if rule.content_type
                               else {})
                    return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP and k.lower() != "host"}
            resp = session.request(self.command, upstream + self.path, data=data or None, headers=headers,
                                   allow_redirects=False, timeout=30)
            with lock:
                proxy.forwarded.append((self.command, path, resp.status_code))
            out = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
            if "Location" in out and out["Location"].startswith(upstream):
                out["Location"] = proxy.url + out["Location"][len(upstream):]
            self._send(resp.status_code, resp.content, out)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy = FaultProxy(f"http://127.0.0.1:{server.server_address[1]}", list(rules), upstream.rstrip("/"),
                       _server=server)
    threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True).start()
    return proxy
