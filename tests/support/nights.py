"""Synthesized nightly runs, built the way a session records them (RunRecord), for history and reports.

The ``nightly`` and ``fleet`` fixtures reach tests/history and tests/report through their conftests."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from hilt.record.run_record import (
    BaselineRecord,
    MetricRecord,
    NodeRecord,
    RunRecord,
    TestRecord,
    VerdictRecord,
    identity_of,
)

GOOD_IMAGE = "img-1.4.2"
REGRESSED_IMAGE = "img-1.4.3-regressed"
START = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def identity(nodeid: str) -> str:
    """The identity the plugin records for a test of these modules (what the history joins its runs by)."""
    stem = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return identity_of(stem, nodeid)


def recorded(nodeid: str, **fields) -> TestRecord:
    """A test as the plugin records it: its node id and its identity (the module that defines it; these
    modules sit outside any package, so the module is named by its file)."""
    return TestRecord(nodeid=nodeid, test_id=identity(nodeid), **fields)


def _verdict(value: float, baseline: BaselineRecord) -> VerdictRecord:
    lo = baseline.value * (1 - baseline.tolerance)
    if value < lo:
        return VerdictRecord(outcome="regression", reason=f"mean {value:.1f} below {lo:.1f}")
    return VerdictRecord(outcome="pass", reason="within tolerance")


def make_night(i: int, rng: random.Random, rig: str = "sim", regress_at: int | None = 20,
               busbw_good: float = 180.0, busbw_bad: float = 150.0) -> RunRecord:
    """Night ``i`` (1-based): NCCL bus bandwidth drops at ``regress_at`` with the regressed image;
    DDP throughput and boot time stay flat (noise only)."""
    regressed = regress_at is not None and i >= regress_at
    image = REGRESSED_IMAGE if regressed else GOOD_IMAGE
    level = busbw_bad if regressed else busbw_good
    busbw_base = BaselineRecord(value=busbw_good, tolerance=0.05, higher_is_better=True)
    busbw = [level + rng.gauss(0, 2.0) for _ in range(5)]
    busbw_mean = sum(busbw) / len(busbw)
    ddp = [1200 + rng.gauss(0, 15) for _ in range(3)]
    boot = [95 + rng.gauss(0, 3)]
    started = START + timedelta(days=i - 1)
    nodes = [NodeRecord(name=f"node{n}", image_id=image, kernel="6.8.0-45", driver="550.90.07",
                        boot_s=boot[0]) for n in (1, 2)]
    tests = [recorded("suites/nvlink/test_links.py::test_all_links_up", outcome="passed"),
             recorded("suites/nccl/test_allreduce.py::test_busbw", outcome="passed")]
    verdict = _verdict(busbw_mean, busbw_base)
    if verdict.outcome == "regression":
        tests[1] = recorded(tests[1].nodeid, outcome="failed", kind="regression",
                            message=f"regression: {verdict.reason}")
    return RunRecord(
        run_id=f"{rig}-night-{i:02d}",
        started_at=started.isoformat(),
        finished_at=(started + timedelta(minutes=40)).isoformat(),
        rig=rig,
        image=image,
        nodes=nodes,
        tests=tests,
        metrics=[
            MetricRecord(name="nccl.all_reduce.busbw", unit="GB/s", labels={"size": "1G", "nodes": "2"},
                         samples=busbw, baseline=busbw_base, verdict=verdict),
            MetricRecord(name="ddp.samples_per_s", unit="samples/s", labels={"backend": "nccl"},
                         samples=ddp),
            MetricRecord(name="boot.seconds", unit="s", samples=boot, higher_is_better=False),
        ],
        gate=VerdictRecord(outcome=verdict.outcome, reason=verdict.reason),
        versions={"driver": "550.90.07", "nccl": "2.21.5", "kernel": "6.8.0-45"},
    )


@pytest.fixture
def nightly() -> Callable[..., list[RunRecord]]:
    """``nightly(n=30, seed=7, rig="sim", regress_at=20)`` -> n RunRecords, one per night."""

    def build(n: int = 30, seed: int = 7, rig: str = "sim", regress_at: int | None = 20) -> list[RunRecord]:
        rng = random.Random(seed)
        return [make_night(i, rng, rig=rig, regress_at=regress_at) for i in range(1, n + 1)]

    return build


# --- a 4-node fleet: one node steps down with a driver change, one test is flaky, one breaks ----------------

FLEET_NODES = ("gpu-01", "gpu-02", "gpu-03", "gpu-04")
FLEET_PROFILE = "h100-8gpu"
OLD_DRIVER, NEW_DRIVER = "550.90.07", "555.42.02"
FLAKY_TEST = "suites/nccl/test_allreduce.py::test_allreduce_many_sizes"
BROKEN_TEST = "suites/dcgm/test_diag.py::test_dcgm_diag_level_2"
STEADY_TEST = "suites/nvlink/test_links.py::test_all_links_up"
FLAKY_NIGHTS = frozenset({4, 9, 15, 21, 27})  # about one night in five, passing in between


def make_fleet_night(i: int, rng: random.Random, rig: str = "rack-a", slow_node: str = "gpu-03",
                     regress_at: int | None = 20, drop: float = 0.12, flaky_node: str = "gpu-02",
                     broken_node: str = "gpu-04", broken_from: int | None = 25) -> RunRecord:
    """Night ``i`` (1-based) of a 4-node rack on one profile: every node's bus bandwidth, NVLink bandwidth and
    boot time. From ``regress_at`` the image ships driver NEW_DRIVER and ``slow_node``'s bus bandwidth is
    ``drop`` lower, still inside the baseline's 15% tolerance (the gate passes). FLAKY_TEST fails on
    ``flaky_node`` on FLAKY_NIGHTS; BROKEN_TEST fails on ``broken_node`` every night from ``broken_from``."""
    new = regress_at is not None and i >= regress_at
    image = "ubuntu-22.04-cuda-12.4-nightly-2026.03" + ("-drv555" if new else "-drv550")
    driver = NEW_DRIVER if new else OLD_DRIVER
    started = START + timedelta(days=i - 1)
    busbw_base = BaselineRecord(value=180.0, tolerance=0.15, higher_is_better=True)
    nvl_base = BaselineRecord(value=370.0, tolerance=0.05, higher_is_better=True)
    nodes, tests, metrics = [], [], []
    for name in FLEET_NODES:
        nodes.append(NodeRecord(name=name, image_id=image, kernel="6.8.0-45", driver=driver,
                                boot_s=95 + rng.gauss(0, 2)))
        level = 180.0 * (1 - drop) if new and name == slow_node else 180.0
        busbw = [level + rng.gauss(0, 1.5) for _ in range(5)]
        nvl = [370.0 + rng.gauss(0, 2.0) for _ in range(3)]
        metrics += [
            MetricRecord(name="nccl.all_reduce.busbw", unit="GB/s", labels={"size": "8G", "nodes": "1", "node": name},
                         samples=busbw, node=name, profile=FLEET_PROFILE, baseline=busbw_base,
                         verdict=_verdict(sum(busbw) / 5, busbw_base)),
            MetricRecord(name="nvlink.p2p.bandwidth", unit="GB/s", labels={"direction": "bidir"}, samples=nvl,
                         node=name, profile=FLEET_PROFILE, baseline=nvl_base, verdict=_verdict(sum(nvl) / 3, nvl_base)),
            MetricRecord(name="boot.seconds", unit="s", samples=[nodes[-1].boot_s or 95.0], node=name,
                         higher_is_better=False),
        ]
        flaky_fail = name == flaky_node and i in FLAKY_NIGHTS
        broken_fail = name == broken_node and broken_from is not None and i >= broken_from
        tests += [
            recorded(f"{STEADY_TEST}[{name}]", outcome="passed", node=name),
            recorded(f"{FLAKY_TEST}[{name}]", outcome="failed" if flaky_fail else "passed",
                       kind="product" if flaky_fail else "none", node=name,
                       message="NCCL WARN Call to ibv_poll_cq failed" if flaky_fail else None),
            recorded(f"{BROKEN_TEST}[{name}]", outcome="failed" if broken_fail else "passed",
                       kind="product" if broken_fail else "none", node=name,
                       message="dcgmi diag: Memory bandwidth test failed" if broken_fail else None),
        ]
    return RunRecord(
        run_id=f"{rig}-night-{i:02d}", started_at=started.isoformat(),
        finished_at=(started + timedelta(minutes=50)).isoformat(), rig=rig, image=image, profile=FLEET_PROFILE,
        nodes=nodes, tests=tests, metrics=metrics, node_profiles={n: FLEET_PROFILE for n in FLEET_NODES},
        gate=VerdictRecord(outcome="pass", reason="every gated metric within tolerance"),
        versions={"driver": driver, "nccl": "2.21.5", "kernel": "6.8.0-45"},
    )


@pytest.fixture
def fleet() -> Callable[..., list[RunRecord]]:
    """``fleet(n=30, seed=11, **make_fleet_night options)`` -> n nights of the 4-node rack."""

    def build(n: int = 30, seed: int = 11, **options) -> list[RunRecord]:
        rng = random.Random(seed)
        return [make_fleet_night(i, rng, **options) for i in range(1, n + 1)]

    return build


# --- a driver upgrade that comes with the regressed image ----------------------------------------------------

OLD, NEW = "550.54.15", "555.42.02"  # the driver before and after driver_upgrade_nights' upgrade


def driver_upgrade_nights(n: int = 30, at: int = 20, seed: int = 7) -> list[RunRecord]:
    """30 nights; from night ``at`` both nodes run driver 555.42.02 (and busbw steps down with the image)."""
    rng = random.Random(seed)
    runs = []
    for i in range(1, n + 1):
        run = make_night(i, rng, regress_at=at)
        driver = NEW if i >= at else OLD
        for node in run.nodes:
            node.driver = driver
        run.versions["driver"] = driver
        runs.append(run)
    return runs
