"""Trust on the simulated rack (issue 16): the good image passes test_trust; each trust image fails exactly its
check, with a message naming the node, what was expected and what was found.

One rack for the module: the generated rig is written as a plain rigs.yaml (no provider), and each session
boots the next image on the same node through its BMC (virtual media), as a rack re-imaged between runs.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import pytest
import yaml

from hilt.exitcodes import ExitCode
from tests.support.sessions import ROOT, outcomes, run_suites

NODE = "gpu-03"
IMAGES = ["good", "secureboot-off", "unsigned-module", "firmware-mismatch"]
TESTS = ["test_secure_boot", "test_kernel_lockdown_and_taint", "test_module_signatures", "test_firmware_matrix",
         "test_device_nodes"]


@pytest.fixture(scope="module")
def rigs(tmp_path_factory):
    from hilt.sim.lifecycle import sim_down, sim_up

    rig = sim_up("ttrust", node_specs=[(NODE, "sim-4gpu")], subnet=52, images=IMAGES, boot_delay_s=0.5,
                 power_delay_s=0.5, boot_timeout_s=15, owner_pid=os.getpid())
    try:
        path = tmp_path_factory.mktemp("trust") / "rigs.yaml"
        path.write_text(yaml.safe_dump({
            "default_rig": "trust", "lease_store": "sqlite://leases.sqlite", "history": "history.sqlite",
            "baselines_dir": str(ROOT / "baselines"), "images": rig["images"],
            "rigs": {"trust": {"default_image": "good", "nodes": rig["nodes"]}}}))
        yield path
    finally:
        sim_down("ttrust")


def _trust_results(rigs, image: str):
    session = run_suites(rigs, "--image", image, suites="suites/test_trust.py")
    results = {name.split("::")[1].split("[")[0]: v for name, v in outcomes(session).items()}
    assert sorted(results) == sorted(TESTS), session.output[-4000:]
    return session, results


def test_good_image_passes_test_trust_and_records_the_firmware(rigs):
    session, results = _trust_results(rigs, "good")
    assert session.code == ExitCode.PASS, session.output[-4000:]
    assert all(kind == "passed" for kind, _ in results.values()), results
    props = {p.get("name"): p.get("value") for p in ET.parse(session.reports / "junit.xml").iter("property")}
    found = {"bios": ["2.2.1"], "bmc": ["1.00"], "vbios": ["96.00.99.00.01"] * 4, "inforom": ["G520.0200.00.05"] * 4}
    assert json.loads(props["hilt.firmware"]) == found
    # in the run record, and shown in the summary
    summary = json.loads((session.reports / "summary.json").read_text())
    assert [n["firmware"] for n in summary["nodes"]] == [found]
    assert f"| `{NODE}` | `2.2.1` | `1.00` | `96.00.99.00.01` | `G520.0200.00.05` |" in \
        (session.reports / "summary.md").read_text()


@pytest.mark.parametrize(("image", "failing", "message"), [
    ("secureboot-off", "test_secure_boot", f"{NODE}: Secure Boot: BMC says Enabled, OS says disabled"),
    ("unsigned-module", "test_module_signatures",
     f"{NODE}: module nvidia_uvm: expected a signature by hilt sim: NVIDIA driver module signing key, "
     "found none (unsigned)"),
    ("firmware-mismatch", "test_firmware_matrix",
     f"{NODE}: firmware vbios[2]: expected one of 96.00.99.00.01, found 96.00.74.00.1C"),
])
def test_each_trust_image_fails_only_its_check(rigs, image, failing, message):
    session, results = _trust_results(rigs, image)
    assert session.code == ExitCode.FAILED, session.output[-4000:]
    assert {test for test, (kind, _) in results.items() if kind != "passed"} == {failing}, results
    kind, text = results[failing]
    assert kind == "failure" and message in text, text
    if image == "firmware-mismatch":  # the image's identity declares the same VBIOS compatible: both say so
        assert "(image hilt-sim-firmware-mismatch's compatibility matrix), found 96.00.74.00.1C" in text, text
