"""The one journey every captured tree gets: power state, inventory, virtual-media boot, network boot,
evidence, logout. Shared by tests/bmc/test_replay.py and bench/bmc_requests.py."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hilt.bmc import Bmc, BmcError
from testkit.redfish_replay.server import PASSWORD, USER, Replay

IMAGE = "http://127.0.0.1:9/images/candidate.iso"  # the replay peer never fetches it


@dataclass
class JourneyResult:
    tree: str
    result: str = "ok"
    """``ok``, or ``no virtual media`` when the tree cannot boot one (and said so clearly)."""
    power_state: str | None = None
    vmedia_error: str | None = None
    vmedia_requests: int = 0
    """HTTP requests of the virtual-media boot alone (from a fresh connection: root, login, ..., logout)."""
    requests: int = 0
    """HTTP requests of the whole journey."""
    seconds: float = 0.0
    inventory: dict = field(default_factory=dict)
    evidence_logs: list[str] = field(default_factory=list)
    evidence_errors: list[str] = field(default_factory=list)


def _bmc(replay: Replay, tree: str, **kw) -> Bmc:
    opts = dict(system_id=replay.state.behaviour.system_id, name=tree, poll_interval_s=0.01, backoff_s=0.01,
                timeout_s=5)
    opts.update(kw)
    return Bmc(replay.url, USER, PASSWORD, **opts)


def run_journey(replay: Replay, tree: str, **kw) -> JourneyResult:
    r = JourneyResult(tree)
    t0 = time.monotonic()
    start = len(replay.state.requests)
    with _bmc(replay, tree, **kw) as bmc:  # the virtual-media boot alone, as bench/bmc_requests.py counts it
        try:
            bmc.boot_from_virtual_media(IMAGE)
        except BmcError as exc:
            r.result, r.vmedia_error = "no virtual media", str(exc)
    r.vmedia_requests = len(replay.state.requests) - start
    with _bmc(replay, tree, **kw) as bmc:
        r.power_state = bmc.power_state()
        r.inventory = bmc.inventory().to_dict()
        bmc.boot_from_network("Pxe")
        ev = bmc.collect_evidence(max_entries=20)
        r.evidence_logs = sorted({e["log"] for e in ev.log_entries})
        r.evidence_errors = ev.errors
    r.requests = len(replay.state.requests) - start
    r.seconds = time.monotonic() - t0
    return r
