"""HTTP requests and wall time of one virtual-media boot, against each quirk mode of the test peer and
against sushy-emulator; then the whole journey (virtual-media boot, power state, inventory, PXE boot, evidence,
logout) on each captured vendor tree served by the replay peer. Run: .venv/bin/python bench/bmc_requests.py"""

from __future__ import annotations

import functools
import http.server
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hilt.bmc import Bmc  # noqa: E402
from hilt.sim.bmc_emulator import start_sushy_emulator  # noqa: E402
from testkit.redfish_peer import QUIRKS, start_peer  # noqa: E402
from testkit.redfish_replay.journey import run_journey  # noqa: E402
from testkit.redfish_replay.server import TREES, start_replay  # noqa: E402

IMAGE = "http://127.0.0.1:9/images/candidate.iso"


def peer_row(quirk: str | None) -> tuple[str, int, float]:
    peer = start_peer({quirk} if quirk else set())
    try:
        t0 = time.monotonic()
        with Bmc(peer.url, "admin", "peer-pw", name="bench", poll_interval_s=0.05, backoff_s=0.05) as bmc:
            bmc.boot_from_virtual_media(IMAGE)
        return quirk or "plain", len(peer.state.requests), time.monotonic() - t0
    finally:
        peer.stop()


def sushy_row() -> tuple[str, int, float]:
    tmp = Path(tempfile.mkdtemp(prefix="hilt-bench-"))
    (tmp / "www").mkdir()
    (tmp / "www" / "img.iso").write_bytes(b"\0" * 4096)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp / "www"))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    emu = start_sushy_emulator(tmp / "emu", [{"uuid": "0b0e0b0e-0000-4000-8000-000000000001", "name": "n0",
                                              "power_state": "Off", "nics": []}],
                               username="admin", password="bench-pw", power_delay_s=1.0)
    try:
        t0 = time.monotonic()
        with Bmc(emu.url, "admin", "bench-pw", verify=str(emu.ca_path), poll_interval_s=0.5) as bmc:
            bmc.boot_from_virtual_media(f"http://127.0.0.1:{srv.server_address[1]}/img.iso")
            n = bmc.requests_sent
        return "sushy-emulator (1 s power delay)", n, time.monotonic() - t0
    finally:
        emu.stop()
        srv.shutdown()


def tree_rows() -> list[tuple[str, str, int, int, float]]:
    rows = []
    for tree in TREES:
        replay = start_replay(tree)
        try:
            r = run_journey(replay, tree)
            rows.append((tree, r.result, r.vmedia_requests, r.requests, r.seconds))
        finally:
            replay.stop()
    return rows


def main() -> None:
    skip = {"dead", "task-fails", "session-expires"}  # not a successful boot by design
    rows = [peer_row(None)] + [peer_row(q) for q in sorted(QUIRKS - skip)] + [sushy_row()]
    print("One virtual-media boot (connect, log in, ..., power on, log out):")
    print(f"{'mode':36} {'requests':>8} {'wall_s':>8}")
    for name, n, wall in rows:
        print(f"{name:36} {n:8d} {wall:8.2f}")
    print("\nThe journey on each captured tree (replay peer; power changes are immediate there):")
    print(f"{'tree':26} {'result':18} {'vmedia req':>10} {'journey req':>11} {'seconds':>8}")
    for tree, result, vm, total, secs in tree_rows():
        print(f"{tree:26} {result:18} {vm:10d} {total:11d} {secs:8.2f}")


if __name__ == "__main__":
    main()
