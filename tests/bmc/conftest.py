from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator

import pytest

from hilt.bmc import Bmc
from testkit.redfish_peer import Peer, start_peer


@pytest.fixture
def peer_factory() -> Iterator:
    started: list[Peer] = []
    bmcs: list[Bmc] = []

    def make(*quirks: str, **bmc_kw) -> tuple[Peer, Bmc]:
        peer = start_peer(set(quirks))
        started.append(peer)
        kw = dict(name="node-a", poll_interval_s=0.02, power_timeout_s=5, backoff_s=0.02, timeout_s=3)
        kw.update(bmc_kw)
        bmc = Bmc(peer.url, "admin", "peer-pw", **kw)
        bmcs.append(bmc)
        return peer, bmc

    yield make
    for b in bmcs:
        b.close()
    for p in started:
        p.stop()


@pytest.fixture(scope="session")
def image_server(tmp_path_factory) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 serving a tiny ISO that sushy-emulator downloads on insert."""
    root = tmp_path_factory.mktemp("images")
    (root / "candidate.iso").write_bytes(b"\0" * 4096)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/candidate.iso"
    srv.shutdown()
    srv.server_close()
