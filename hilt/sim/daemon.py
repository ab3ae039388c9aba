"""The sim daemon's command line: ``python -m hilt.sim.daemon --state-dir DIR --name sim --nodes 4``.

Started detached by hilt.sim.lifecycle.sim_up (`hilt sim up`, the sim provider), it owns one simulated rack
(hilt/sim/rack.py) from start to cleanup: SIGTERM, SIGINT, SIGHUP or the death of the owning process tears
everything down; a start that fails writes its reason to ``failed.json`` for the starter.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import traceback
from pathlib import Path

from hilt.sim import state
from hilt.sim.rack import SimDaemon, SimStartError

log = logging.getLogger("hilt.sim.daemon")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hilt.sim.daemon",
                                description="The sim daemon: owns one simulated rack from start to cleanup.")
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument("--name", default="sim")
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--subnet", type=int, default=0, help="the sim's network is 10.200.<subnet>.0/24")
    p.add_argument("--boot-delay-s", type=float, default=1.0)
    p.add_argument("--power-delay-s", type=float, default=1.0)
    p.add_argument("--boot-timeout-s", type=float, default=30.0)
    p.add_argument("--images", default="", help="comma-separated standard images (default: all)")
    p.add_argument("--profile", default="sim-4gpu")
    p.add_argument("--node-specs", default="", help='JSON [[name, profile], ...]; default: --nodes of --profile')
    p.add_argument("--owner-pid", type=int, default=None, help="tear down when this process dies")
    p.add_argument("--temporary", action="store_true", help="remove the state directory at stop")
    return p.parse_args(argv)


def serve(daemon: SimDaemon, args: argparse.Namespace) -> int:
    """Run a daemon until SIGTERM/SIGINT/SIGHUP; a start failure is written to failed.json for the starter."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: daemon.stop_event.set())
    try:
        daemon.start()
    except Exception as exc:
        message = str(exc) if isinstance(exc, SimStartError) else f"{type(exc).__name__}: {exc}"
        log.error("sim %s failed to start: %s", args.name, message)
        if not isinstance(exc, SimStartError):
            log.error("%s", traceback.format_exc())
        daemon.shutdown(keep_state_dir=True)
        state.write_json(args.state_dir / "failed.json", {"error": message})
        return 2
    log.info("sim %s ready: %d node(s), control %s", args.name, len(daemon.machines), daemon.base_url)
    threading.Thread(target=daemon.watch_owner, daemon=True).start()
    while not daemon.stop_event.wait(0.5):
        pass
    log.info("sim %s stopping", args.name)
    daemon.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return serve(SimDaemon(args), args)


if __name__ == "__main__":
    sys.exit(main())
