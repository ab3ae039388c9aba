"""Each fabric fault image fails exactly the right suite with the right message; the good image passes all."""

from __future__ import annotations

import pytest

from hilt.exitcodes import ExitCode
from hilt.record.run_record import RunRecord
from hilt.report.fabric import problems
from tests.support.sessions import outcomes, run_suites

FABRIC = "suites/test_nvlink.py suites/test_topology.py suites/test_devicetree.py suites/test_nvml.py"


@pytest.mark.parametrize("profile", ["sim-4gpu", "sim-riscv-nvlink"])
def test_good_image_passes_every_fabric_suite(sim_rig, profile):
    session = run_suites(sim_rig(nodes=1, profile=profile), suites=FABRIC)
    assert session.code == ExitCode.PASS, session.output[-4000:]
    results = outcomes(session)
    failed = {k: v for k, v in results.items() if v[0] in ("failure", "error")}
    assert not failed
    if profile == "sim-riscv-nvlink":
        assert results["test_devicetree::test_devicetree_nvlink_nodes[node1]"][0] == "passed"


@pytest.mark.parametrize(("image", "profile", "failing", "message"), [
    ("links-down", "sim-4gpu", "test_nvlink", "GPU0 link 1 inactive (expected 4 active)"),
    ("wrong-topo", "sim-4gpu", "test_topology", "GPU0-GPU1: expected NV4, found SYS"),
    ("dt-missing", "sim-riscv-nvlink", "test_devicetree", "device tree: nvlink-1 missing"),
    ("wrong-driver", "sim-4gpu", "test_nvml", "driver: expected 550.54.15, found 535.104.05"),
])
def test_fault_image_fails_exactly_the_right_suite(sim_rig, image, profile, failing, message):
    session = run_suites(sim_rig(nodes=1, profile=profile), "--image", image, suites=FABRIC)
    assert session.code == ExitCode.FAILED, session.output[-4000:]
    failed = {k: v for k, v in outcomes(session).items() if v[0] in ("failure", "error")}
    assert failed, session.output[-3000:]
    assert {k.split("::")[0] for k in failed} == {failing}, failed
    assert all(v[0] == "failure" for v in failed.values()), failed
    assert any(message in v[1] for v in failed.values()), failed
    if image == "wrong-topo":  # the report's fabric picture reads found and expected from the run record
        (node,) = RunRecord.model_validate_json((session.reports / "summary.json").read_text()).nodes
        assert node.topology is not None and node.topology.profile == "sim-4gpu"
        assert "GPU0–GPU1: expected NV4, found SYS" in problems(node.topology)
