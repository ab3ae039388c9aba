"""The release gate against the simulated rack: the good image passes, the regressed image fails it."""

from __future__ import annotations

import json
import re

from hilt.exitcodes import ExitCode
from tests.support.sessions import run_suites

PROBES = ("-k", "test_torch_allreduce or test_nccl_tests or test_nvbandwidth")  # every probe sim-4gpu gates
SUITES = "suites/test_nccl.py suites/test_nvbandwidth.py"


def test_good_image_passes_the_gate(sim_rig):
    session = run_suites(sim_rig(nodes=1), *PROBES, suites=SUITES)
    assert session.code == ExitCode.PASS, session.output[-4000:]
    summary = json.loads((session.reports / "summary.json").read_text())
    assert summary["gate"]["outcome"] == "pass"
    gated = [m for m in summary["metrics"] if m["verdict"] and m["verdict"]["gated"]]
    assert {m["name"] for m in gated} == {"torch.all_reduce.busbw", "nccl.all_reduce.busbw",
                                          "nvbandwidth.device_to_device_memcpy_read_ce"}
    assert all(m["verdict"]["outcome"] == "pass" for m in gated), gated
    # summary.md, what a reviewer reads first: the verdict as its headline, then one passing row per gated metric
    md = (session.reports / "summary.md").read_text()
    assert md.splitlines()[0] == "## ✅ hilt gate: **PASS** (pass)", md[:2000]
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    for m in gated:
        assert any(r.startswith(f"| `{m['name']}` |") and r.endswith("| ✅ pass |") for r in rows), (m["name"], md)


def test_regressed_image_fails_the_gate_naming_metric_size_and_values(sim_rig):
    session = run_suites(sim_rig(nodes=1), "--image", "regressed", *PROBES, suites=SUITES)
    assert session.code == ExitCode.FAILED, session.output[-4000:]
    summary = json.loads((session.reports / "summary.json").read_text())
    assert summary["gate"]["outcome"] == "regression"
    torch = next(m for m in summary["metrics"] if m["name"] == "torch.all_reduce.busbw"
                 and m["labels"]["size"] == "16777216")
    assert torch["verdict"]["outcome"] == "regression"
    assert sum(torch["samples"]) / len(torch["samples"]) < 0.8 * torch["baseline"]["value"]
    failure = next(t for t in summary["tests"] if "test_torch_allreduce" in t["nodeid"])
    assert failure["outcome"] == "failed" and failure["kind"] == "regression"
    assert "torch.all_reduce.busbw" in failure["message"] and "size=16777216" in failure["message"]
    assert re.search(r"measured [0-9.]+", failure["message"]) and "baseline" in failure["message"]
    md = (session.reports / "summary.md").read_text()
    assert md.splitlines()[0] == "## ❌ hilt gate: **FAIL** (regression)", md[:2000]
    assert any(line.startswith("| `torch.all_reduce.busbw` |") and "size=16777216" in line
               and line.endswith("| ❌ regression |") for line in md.splitlines()), md
