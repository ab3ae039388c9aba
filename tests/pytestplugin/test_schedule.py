"""Node scheduling without a rack: which node a test id is on, and the locks that keep a node to one test."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from hilt.pytestplugin.schedule import NodeLocks, node_of_nodeid

NAMES = ["gpu-01", "gpu-010", "r3-u17.gpu", "node_7"]


@pytest.mark.parametrize("nodeid, node", [
    ("suites/test_nvlink.py::test_links[gpu-01]", "gpu-01"),
    ("suites/test_nvlink.py::test_links[gpu-010]", "gpu-010"),
    ("suites/test_nccl.py::test_bw[gpu-01-16M]", "gpu-01"),
    ("suites/test_nccl.py::test_bw[16M-r3-u17.gpu]", "r3-u17.gpu"),
    ("suites/test_nccl.py::test_bw[a-node_7-b]", "node_7"),
    ("suites/test_ddp.py::test_ddp_across_lease", None),
    ("suites/test_x.py::test_y[gpu-02]", None),
])
def test_node_of_a_test_id(nodeid, node):
    assert node_of_nodeid(nodeid, NAMES) == node


def _hold(directory: str, kind: str, name: str, out: multiprocessing.Queue) -> None:
    locks = NodeLocks(Path(directory))
    with locks.lease() if kind == "lease" else locks.node(name):
        start = time.monotonic()
        time.sleep(0.3)
        out.put((kind, name, start, time.monotonic()))


def _run_all(directory: Path, jobs: list[tuple[str, str]]) -> list[tuple]:
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_hold, args=(str(directory), kind, name, out)) for kind, name in jobs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    return [out.get(timeout=5) for _ in procs]


def _overlap(a: tuple, b: tuple) -> bool:
    return a[2] < b[3] and b[2] < a[3]


def test_one_node_one_holder_across_processes(tmp_path):
    held = _run_all(tmp_path, [("node", "gpu-01")] * 3 + [("node", "gpu-02")] * 3)
    for i, a in enumerate(held):
        for b in held[i + 1:]:
            if a[1] == b[1]:
                assert not _overlap(a, b), f"{a[1]} was held twice at once"


def test_the_lease_lock_excludes_every_node_lock(tmp_path):
    held = _run_all(tmp_path, [("node", "gpu-01"), ("node", "gpu-02"), ("lease", "*"), ("node", "gpu-01")])
    lease = [h for h in held if h[0] == "lease"][0]
    assert not [h for h in held if h is not lease and _overlap(h, lease)]
