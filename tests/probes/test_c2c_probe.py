"""The copy probe through NVLink-C2C (issue 26 item 3): per-GPU metrics from nvbandwidth's host<->device testcases,
its plan (so coverage knows what a Grace profile owes), and one probe run per look when every GPU is gated."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.gate.baselines import load_baselines
from hilt.gate.coverage import plan_gaps
from hilt.node.local import LocalNode
from hilt.probes.c2c_probe import c2c_metrics
from hilt.probes.dcgm_probe import run_nvbandwidth
from hilt.probes.errors import ProbeFailed
from hilt.probes.nvbandwidth import parse_nvbandwidth
from hilt.probes.plan import c2c_planned
from hilt.probes.settings import planned_for_profile
from hilt.probes.suite_support import shared_remeasurer
from hilt.profiles.model import load_profile
from hilt.record.metrics import Metric
from hilt.sim.dcgm_view import write_nvbandwidth
from hilt.suites import test_c2c as suite_c2c

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TESTCASES = ["host_to_device_memcpy_ce", "device_to_host_memcpy_ce"]

# stages the nvbandwidth script in /tmp/hilt-probe-* like the other local probe tests: one worker runs them all
pytestmark = pytest.mark.xdist_group("local-probes")


def test_gb300_station_capture_gives_one_metric_per_direction():
    text = (CORPUS / "nvbandwidth/gb300-dgx-station-1gpu-ce-author-elided-start-and-end.txt").read_text()
    metrics = c2c_metrics(parse_nvbandwidth(text), TESTCASES, "station", 1)
    labels = {"tool": "nvbandwidth", "node": "station", "gpu": "0", "gpus": "1"}
    assert [(m.name, m.samples, m.label_dict) for m in metrics] == [
        ("c2c.host_to_device_memcpy_ce", (359.05,), labels), ("c2c.device_to_host_memcpy_ce", (377.15,), labels)]


def test_a_gpu_without_a_figure_fails_naming_it():
    text = (CORPUS / "nvbandwidth/a10-v0.5-h2d-ce-single-gpu.txt").read_text()
    with pytest.raises(ProbeFailed, match=r"a10: nvbandwidth host_to_device_memcpy_ce printed no figure for "
                                          r"GPU 1, 2, 3 of 4"):
        c2c_metrics(parse_nvbandwidth(text), ["host_to_device_memcpy_ce"], "a10", 4)


def test_sim_nvbandwidth_through_the_node_protocol(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{tmp_path / 'usr/local/bin'}:/usr/bin:/bin")
    write_nvbandwidth(tmp_path, {"d2d_gbps": 150.0, "h2d_gbps": 180.0, "d2h_gbps": 185.0, "noise": 0.0}, 4,
                      "NVIDIA GB200", "580.65.06")
    metrics = c2c_metrics(run_nvbandwidth(LocalNode("tray1"), TESTCASES), TESTCASES, "tray1", 4)
    assert [(m.name, m.label_dict["gpu"], m.samples) for m in metrics] == (
        [("c2c.host_to_device_memcpy_ce", str(g), (180.0,)) for g in range(4)]
        + [("c2c.device_to_host_memcpy_ce", str(g), (185.0,)) for g in range(4)])


def test_plan_names_every_gpu_and_the_probe_declares_its_metrics():
    planned = c2c_planned(TESTCASES, 4)
    assert len(planned) == 8 and {p.name.split(".")[0] for p in planned} == {"c2c"}
    assert planned[3].labels == {"tool": "nvbandwidth", "gpu": "3", "gpus": "4"}
    # coverage finds the probe by its marker, not its name: the suite's copy probe declares the c2c. metrics
    marks = [m for m in getattr(suite_c2c.test_c2c_bandwidth, "pytestmark", []) if m.name == "probe"]
    assert [m.args for m in marks] == [("c2c.",)]
    names = {p.name for p in planned_for_profile(load_profile("gb200-nvl-tray-4gpu"))}
    assert {"c2c.host_to_device_memcpy_ce", "c2c.device_to_host_memcpy_ce"} <= names
    assert not any(p.name.startswith("c2c.") for p in planned_for_profile(load_profile("sim-4gpu")))


@pytest.mark.parametrize("profile", ["gh200-1gpu", "gb200-nvl-tray-4gpu", "gb300-nvl-tray-4gpu"])
def test_shipped_grace_baselines_gate_every_gpu_both_ways_with_a_named_source(profile):
    bset = load_baselines(BASELINES, profile)
    gpus = load_profile(profile).gpu_count
    gated = [e for e in bset.entries if e.metric.startswith("c2c.") and bset.is_gated(
        Metric.of(e.metric, e.unit, [], e.labels))]
    assert sorted((e.metric, e.labels["gpu"]) for e in gated) == sorted(
        (f"c2c.{t}", str(g)) for t in TESTCASES for g in range(gpus))
    assert all(e.source and e.source.note and "EXAMPLE" in bset.description for e in gated)
    assert plan_gaps(bset, planned_for_profile(load_profile(profile))) == []


def test_one_probe_run_answers_every_gpus_re_measure():
    runs = []

    def probe() -> list[Metric]:
        runs.append(1)
        return [Metric.of("c2c.h2d", "GB/s", [100.0 + len(runs)], {"gpu": g}) for g in range(4)]

    first = probe()
    again = shared_remeasurer(probe)
    assert list(again(first[0])()) == [102.0] and len(runs) == 2
    assert [list(again(m)()) for m in first[1:]] == [[102.0]] * 3 and len(runs) == 2  # no run per GPU
    assert list(again(first[3])()) == [103.0] and len(runs) == 3
