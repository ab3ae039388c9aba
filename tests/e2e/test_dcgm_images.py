"""DCGM and nvbandwidth on the simulated rack: the good image passes test_dcgm and the nvbandwidth gate; each
fault image fails exactly its check, naming the DCGM test or the testcase and measured vs expected."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from hilt.exitcodes import ExitCode
from tests.support.sessions import outcomes, run_suites

SUITES = "suites/test_dcgm.py suites/test_nvbandwidth.py"
DCGM = "test_dcgm::test_dcgm_diag[node1]"
NVB = "test_nvbandwidth::test_nvbandwidth[node1]"


def _nvbandwidth_only_baselines(directory: Path) -> Path:
    """The shipped sim-4gpu baselines, gating only nvbandwidth: this run selects no other probe, and a release
    gate with unmeasured gated entries is inconclusive (issue 13), so the run gates what it measures."""
    shipped = yaml.safe_load((Path(__file__).resolve().parents[2] / "baselines" / "sim-4gpu.yaml").read_text())
    keep = "nvbandwidth."
    shipped["gated"] = [g for g in shipped["gated"] if g["metric"].startswith(keep)]
    shipped["entries"] = [e for e in shipped["entries"] if e["metric"].startswith(keep)]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sim-4gpu.yaml").write_text(yaml.safe_dump(shipped, sort_keys=False))
    return directory


def test_good_image_passes_dcgm_and_the_nvbandwidth_gate(sim_rig, tmp_path):
    rigs = sim_rig(nodes=1, baselines=_nvbandwidth_only_baselines(tmp_path / "baselines"))
    session = run_suites(rigs, suites=SUITES)
    assert session.code == ExitCode.PASS, session.output[-4000:]
    assert "gated: 1 of 1 entries measured" in session.output, session.output[-4000:]
    results = outcomes(session)
    assert results[DCGM][0] == "passed" and results[NVB][0] == "passed", results
    summary = json.loads((session.reports / "summary.json").read_text())
    gated = [m for m in summary["metrics"] if m["verdict"] and m["verdict"]["gated"]]
    assert [(m["name"], m["labels"]["pair"], m["verdict"]["outcome"]) for m in gated] == [
        ("nvbandwidth.device_to_device_memcpy_read_ce", "sum", "pass")]
    pairs = [m for m in summary["metrics"] if m["name"] == "nvbandwidth.device_to_device_memcpy_read_ce"]
    assert len(pairs) == 13  # the SUM and 12 ordered GPU pairs of the 4-GPU profile


def test_dcgm_memory_fail_image_fails_only_test_dcgm_naming_test_and_gpu(sim_rig):
    session = run_suites(sim_rig(nodes=1), "--image", "dcgm-memory-fail", suites=SUITES)
    assert session.code == ExitCode.FAILED, session.output[-4000:]
    results = outcomes(session)
    assert results[NVB][0] == "passed", results
    kind, message = results[DCGM]
    assert kind == "failure"
    assert "'memory'" in message and "fail on GPU 1" in message and "double-bit ECC" in message


def test_slow_copy_image_fails_only_the_nvbandwidth_gate_with_measured_and_expected(sim_rig):
    session = run_suites(sim_rig(nodes=1), "--image", "slow-copy", suites=SUITES)
    assert session.code == ExitCode.FAILED, session.output[-4000:]
    results = outcomes(session)
    assert results[DCGM][0] == "passed", results
    kind, message = results[NVB]
    assert kind == "failure" and "regression" in message
    assert "nvbandwidth.device_to_device_memcpy_read_ce" in message and "pair=sum" in message
    assert re.search(r"measured [0-9.]+", message) and "baseline" in message, message
    summary = json.loads((session.reports / "summary.json").read_text())
    metric = next(m for m in summary["metrics"] if m["name"] == "nvbandwidth.device_to_device_memcpy_read_ce"
                  and m["labels"]["pair"] == "sum")
    assert metric["verdict"]["outcome"] == "regression" and metric["baseline"]["value"] == 1799.86
    assert sum(metric["samples"]) / len(metric["samples"]) < 1000
