"""DCGM and nvbandwidth on the simulated rack: the good image passes test_dcgm and the nvbandwidth gate; each
fault image fails exactly its check, naming the DCGM test or the testcase and measured vs expected."""

from __future__ import annotations

import json
import re

from hilt.exitcodes import ExitCode
from tests.e2e.conftest import run_suites
from tests.e2e.test_fabric_images import outcomes

SUITES = "suites/test_dcgm.py suites/test_nvbandwidth.py"
DCGM = "test_dcgm::test_dcgm_diag[node1]"
NVB = "test_nvbandwidth::test_nvbandwidth[node1]"


def test_good_image_passes_dcgm_and_the_nvbandwidth_gate(sim_rig):
    session = run_suites(sim_rig(nodes=1), suites=SUITES)
    assert session.code == ExitCode.PASS, session.output[-4000:]
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
