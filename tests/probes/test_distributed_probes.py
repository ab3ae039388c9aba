"""The real probe scripts under real torchrun + gloo, through LocalNode (subprocess instead of SSH).

Few tests on purpose: each starts torch several times (about 2 s per import on this machine).
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest

from hilt.node.local import LocalNode
from hilt.probes import runner
from hilt.probes.errors import ProbeSkipped, ProbeTimeout
from hilt.sim.nccl_tests_view import write_nccl_tests

# probe runs on this host leave run directories under /tmp and tagged processes, which these tests look for:
# under `make test-fast` (-n, --dist loadgroup) the modules that run probes here share one worker
pytestmark = pytest.mark.xdist_group("local-probes")


RUN_DIR = re.compile(r"^/tmp/hilt-probe-([0-9T]+-[0-9a-f]+)-\d+")


class TracedNode(LocalNode):
    """A LocalNode that notes the probe run directories it is asked to stage and run in, so that the checks look
    only at this test's runs: other probes run on this host too (other tests under -n, other people's racks)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.run_dirs: set[str] = set()

    def _note(self, *paths: object) -> None:
        for path in paths:
            if (m := RUN_DIR.match(str(path))) is not None:
                self.run_dirs.add(m.group(0))

    def upload(self, local_path, remote_path):  # noqa: ANN001
        self._note(remote_path)
        return super().upload(local_path, remote_path)

    def run(self, argv, timeout=60, check=True, on_output=None):  # noqa: ANN001
        self._note(*argv)
        return super().run(argv, timeout, check, on_output)


def _tags(*nodes: TracedNode) -> set[bytes]:
    """The HILT_PROBE_RUN marks of the nodes' runs (the tag is ``hilt-<run id>``, the directory
    ``/tmp/hilt-probe-<run id>-<i>``)."""
    return {f"HILT_PROBE_RUN=hilt-{RUN_DIR.match(d).group(1)}".encode() for n in nodes for d in n.run_dirs}


def _tagged_processes(*nodes: TracedNode) -> list[int]:
    """Processes still alive that carry the mark of one of these nodes' probe runs."""
    marks = _tags(*nodes)
    assert marks, "the nodes staged no probe run"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marks & set(fh.read().split(b"\0")):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_single_node_allreduce_gives_busbw_per_size_with_every_sample() -> None:
    node = TracedNode("n1")
    run = runner.torch_allreduce([node], [2**20, 4 * 2**20], repeats=3, warmup=1, timeout_s=60)
    busbw = {m.label_dict["size"]: m for m in run.metrics if m.name == "torch.all_reduce.busbw"}
    algbw = {m.label_dict["size"]: m for m in run.metrics if m.name == "torch.all_reduce.algbw"}
    assert set(busbw) == {str(2**20), str(4 * 2**20)}
    for size, metric in busbw.items():
        assert len(metric.samples) == 3 and all(s > 0 for s in metric.samples)
        assert metric.unit == "GB/s"
        assert metric.label_dict | {"size": size} == {"backend": "gloo", "dtype": "float32", "gpus_per_node": "0",
                                                      "node": "n1", "nodes": "1", "ranks": "2", "size": size,
                                                      "tool": "torch"}
        # 2 ranks: busbw = algbw x 2(n-1)/n = algbw
        assert metric.samples == pytest.approx(algbw[size].samples)
    assert 0 < run.measured_s < run.wall_s
    assert _tagged_processes(node) == []


def test_two_node_allreduce_and_busbw_factor() -> None:
    nodes = [TracedNode("a"), TracedNode("b")]
    run = runner.torch_allreduce(nodes, [2**20], repeats=3, warmup=1, timeout_s=90)
    by_name = {m.name: m for m in run.metrics}
    bus, alg = by_name["torch.all_reduce.busbw"], by_name["torch.all_reduce.algbw"]
    assert bus.label_dict["nodes"] == "2" and bus.label_dict["ranks"] == "4" and bus.label_dict["node"] == "a+b"
    assert bus.samples == pytest.approx([a * 1.5 for a in alg.samples])  # 2(4-1)/4
    assert _tagged_processes(*nodes) == []


def test_ddp_probe_reports_throughput_and_communication() -> None:
    run = runner.ddp([LocalNode("n1")], grad_mb=8, steps=3, timeout_s=60)
    names = {m.name: m for m in run.metrics}
    assert set(names) >= {"ddp.samples_per_s", "ddp.comm_ms_per_step"}
    assert len(names["ddp.samples_per_s"].samples) == 3
    assert all(s > 0 for s in names["ddp.samples_per_s"].samples)
    assert names["ddp.comm_ms_per_step"].higher_is_better is False
    assert names["ddp.samples_per_s"].label_dict["grad_mb"] == "8.0"
    assert run.records[0]["grad_bytes"] == pytest.approx(8 * 2**20, rel=0.01)


def test_hanging_probe_is_killed_on_every_node_within_its_timeout() -> None:
    nodes = [TracedNode("a"), TracedNode("b")]
    seen_pgids: set[int] = set()
    stop = threading.Event()

    def watch() -> None:  # record the process groups the launcher writes, as a person would look for them
        while not stop.is_set():
            for run_dir in [d for n in nodes for d in list(n.run_dirs)]:
                try:
                    seen_pgids.add(int(Path(run_dir, "pgid").read_text()))
                except (OSError, ValueError):
                    pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    with pytest.raises(ProbeTimeout, match="did not finish in 12 s"):
        runner.torch_allreduce(nodes, [2**20], repeats=2, warmup=1, timeout_s=12, extra_args=["--hang-rank", "1"])
    elapsed = time.monotonic() - started
    stop.set()
    watcher.join()
    assert elapsed < 12 + 10  # the deadline plus the reaper's TERM/KILL grace
    assert len(seen_pgids) == 2  # one launcher group per node
    assert not any(_group_alive(p) for p in seen_pgids)
    assert _tagged_processes(*nodes) == []
    assert [d for n in nodes for d in n.run_dirs if Path(d).exists()] == []  # the reaper removed both run dirs


def test_copy_bandwidth_skips_on_cpu_only_node_with_reason() -> None:
    with pytest.raises(ProbeSkipped, match="has no NVIDIA GPU"):
        runner.run_copy_bandwidth(LocalNode("cpu1"), [2**20], repeats=2)


class PathNode(LocalNode):
    """A LocalNode whose PATH starts with a sim image's /usr/local/bin."""

    def __init__(self, name: str, bindir: Path):
        super().__init__(name)
        self.bindir = bindir

    def run(self, argv, timeout=60, check=True, on_output=None):  # noqa: ANN001
        old = os.environ["PATH"]
        os.environ["PATH"] = f"{self.bindir}:{old}"
        try:
            return super().run(argv, timeout, check, on_output)
        finally:
            os.environ["PATH"] = old


def test_nccl_tests_path_end_to_end_with_sim_binary(tmp_path: Path) -> None:
    write_nccl_tests(tmp_path, {"nccl_busbw_gbps": 300.0, "gpus": 8, "nccl_version": "2.21.5", "noise": 0.0})
    node = PathNode("gpu1", tmp_path / "usr" / "local" / "bin")
    result, metrics = runner.run_nccl_tests([node], "all_reduce_perf", ["-b", "1M", "-e", "64M", "-f", "2", "-g", "8"],
                                            gpus_per_node=8)
    assert [r.size for r in result.rows] == [2**20 * 2**k for k in range(7)]
    assert result.nranks == 8 and result.nccl_version == "2.21.5"
    top = [m for m in metrics if m.name == "nccl.all_reduce.busbw" and m.label_dict["size"] == str(64 * 2**20)][0]
    assert top.samples[0] == pytest.approx(300.0 * 64 / 72, rel=0.01)  # peak x size/(size + 8 MiB)
    assert top.label_dict["nccl_version"] == "2.21.5" and top.label_dict["tool"] == "nccl-tests"


def test_nccl_tests_skipped_where_binary_is_absent() -> None:
    with pytest.raises(ProbeSkipped, match="no all_reduce_perf"):
        runner.run_nccl_tests([LocalNode("plain")], "all_reduce_perf")
