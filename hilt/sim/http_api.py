"""The sim daemon's HTTP API on 127.0.0.1: the images its BMCs serve, sushy-emulator's notifications, and the
fault control that tests use (hilt.sim.control.SimControl is its client).

The engine never calls it: a real rack has no such API, and the sim is reached only through Redfish and SSH.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("hilt.sim.daemon")


class ServedImage(Protocol):
    path: Path  # the image file, sent as it is


class Rack(Protocol):
    """What the API asks of the rack it serves (hilt.sim.rack.SimDaemon)."""

    images: dict[str, ServedImage]  # file name -> image

    def status(self) -> dict[str, Any]: ...

    def on_notification(self, system: dict[str, Any]) -> None: ...

    def set_fault(self, node: str, fault: str, params: dict[str, Any]) -> dict[str, Any]: ...

    def clear_faults(self, node: str | None) -> dict[str, Any]: ...


class RackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, rack: Rack):
        self.rack = rack
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def serve_api(rack: Rack) -> RackServer:
    """Start the API on a free loopback port, in a daemon thread; ``shutdown()`` stops it."""
    server = RackServer(rack)
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    return server


class Handler(BaseHTTPRequestHandler):
    """One request of the API; ``server.rack`` is the rack it speaks for."""

    server: RackServer

    def log_message(self, fmt: str, *a: Any) -> None:
        log.debug("http: " + fmt, *a)

    def _json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.startswith("/images/"):
            img = self.server.rack.images.get(self.path[len("/images/"):])
            if img is None:
                return self._json(404, {"error": f"no image {self.path}", "images": list(self.server.rack.images)})
            data = img.path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-tar")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/control/status":
            self._json(200, self.server.rack.status())
        else:
            self._json(404, {"error": "unknown path"})

    def do_HEAD(self) -> None:  # noqa: N802
        img = self.server.rack.images.get(self.path[len("/images/"):]) if self.path.startswith("/images/") else None
        self.send_response(200 if img else 404)
        self.send_header("Content-Length", str(img.path.stat().st_size if img else 0))
        self.end_headers()

    def do_PUT(self) -> None:  # noqa: N802
        if self.path == "/notify":
            self.server.rack.on_notification(self._body())
            return self._json(200, {})
        self._json(404, {"error": "unknown path"})

    def do_POST(self) -> None:  # noqa: N802
        try:
            body, rack = self._body(), self.server.rack
            if self.path == "/control/fault":
                return self._json(200, rack.set_fault(body["node"], body["fault"], body.get("params") or {}))
            if self.path == "/control/clear":
                return self._json(200, rack.clear_faults(body.get("node")))
            self._json(404, {"error": "unknown path"})
        except (KeyError, ValueError) as exc:
            self._json(400, {"error": str(exc)})

