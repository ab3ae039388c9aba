"""NVLink Fusion on the simulated rack (issue 26): a GB200 NVL72 rig of four compute trays, booted and checked end
to end (BMC virtual media, SSH, the real suites, the release gate). The good image passes test_c2c,
test_coherent_memory and test_nvlink_domain and the gated C2C copy probe with every gated entry measured; each
Fusion fault image fails exactly its check, with a message naming the node, GPU, link or field and what differs.

One rack for the module: the generated rig is written as a plain rigs.yaml (no provider), and each session boots
the next image on the same four trays through their BMCs, as a rack re-imaged between runs.
"""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml

from hilt.exitcodes import ExitCode
from tests.support.sessions import ROOT, outcomes, run_suites

TRAYS = ["gb200-tray-01", "gb200-tray-02", "gb200-tray-03", "gb200-tray-04"]
PROFILE = "gb200-nvl-tray-4gpu"
FAULTS = ["c2c-link-down", "c2c-slow", "coherent-memory-missing", "fabric-training", "clique-split", "imex-node-down"]
SUITES = "suites/test_c2c.py suites/test_coherent_memory.py suites/test_nvlink_domain.py"
PER_NODE = ["test_c2c_links", "test_c2c_bandwidth", "test_coherent_memory", "test_fabric_state"]
LEASE_WIDE = ["test_one_domain", "test_imex_domain"]


@pytest.fixture(scope="module")
def rigs(tmp_path_factory):
    from hilt.sim.lifecycle import sim_down, sim_up

    rig = sim_up("tfusion", node_specs=[(t, PROFILE) for t in TRAYS], subnet=54, images=["good", *FAULTS],
                 boot_delay_s=0.5, power_delay_s=0.5, boot_timeout_s=20, owner_pid=os.getpid())
    try:
        path = tmp_path_factory.mktemp("fusion") / "rigs.yaml"
        path.write_text(yaml.safe_dump({
            "default_rig": "gb200", "lease_store": "sqlite://leases.sqlite", "history": "history.sqlite",
            "baselines_dir": str(ROOT / "baselines"), "images": rig["images"],
            "rigs": {"gb200": {"default_image": "good", "nodes": rig["nodes"]}}}))
        yield path
    finally:
        sim_down("tfusion")


def _results(rigs, image: str):
    """test name (node-parametrized ones as name[node]) -> (outcome, message), after one session with ``image``."""
    session = run_suites(rigs, "--image", image, suites=SUITES)
    results = {name.split("::")[1]: v for name, v in outcomes(session).items()}
    expected = {f"{t}[{n}]" for t in PER_NODE for n in TRAYS} | set(LEASE_WIDE)
    assert set(results) == expected, session.output[-4000:]
    return session, results


def test_good_image_passes_every_fusion_suite_and_the_gated_c2c_probe(rigs):
    session, results = _results(rigs, "good")
    assert session.code == ExitCode.PASS, session.output[-4000:]
    assert {k: v for k, v in results.items() if v[0] != "passed"} == {}
    gated = re.search(r"gated: (\d+) of (\d+) entries measured", session.output)
    assert gated and gated.group(1) == gated.group(2) and int(gated.group(1)) > 0, session.output[-4000:]
    summary = json.loads((session.reports / "summary.json").read_text())
    c2c = [m for m in summary["metrics"] if m["name"].startswith("c2c.")]
    # both copy directions, every GPU of every tray, each judged against the profile's baseline
    assert {(m["name"], m["labels"]["node"], m["labels"]["gpu"]) for m in c2c} == {
        (f"c2c.{t}", n, str(g)) for t in ("host_to_device_memcpy_ce", "device_to_host_memcpy_ce")
        for n in TRAYS for g in range(4)}
    assert {m["verdict"]["outcome"] for m in c2c} == {"pass"}


@pytest.mark.parametrize(("image", "failing", "messages"), [
    ("c2c-link-down", "test_c2c_links", ["NVLink-C2C differs from profile gb200-nvl-tray-4gpu",
                                         "GPU0 C2C link 3: inactive, expected active"]),
    ("c2c-slow", "test_c2c_bandwidth", ["regression", "c2c.host_to_device_memcpy_ce"]),
    ("coherent-memory-missing", "test_coherent_memory",
     ["GPU0: nvidia-smi topo -m shows no GPU NUMA ID: its memory is not a NUMA node"]),
    ("fabric-training", "test_fabric_state",
     ["gb200-tray-02: NVLink fabric differs", "GPU2 (00000018:06:00.0): fabric state In Progress, expected Completed"]),
    ("clique-split", "test_one_domain",
     ["not one NVLink domain", "clique 32767 (ClusterUUID 00000001-0000-0000-0000-000000000001): gb200-tray-02",
      "clique 32766 (ClusterUUID 00000001-0000-0000-0000-000000000001): gb200-tray-01, gb200-tray-03, "
      "gb200-tray-04"]),
    ("imex-node-down", "test_imex_domain",
     ["IMEX Domain State DEGRADED, expected UP (seen from every node)",
      "is UNAVAILABLE, expected READY (seen from every node)", "gb200-tray-02"]),
])
def test_each_fusion_fault_image_fails_only_its_check(rigs, image, failing, messages):
    session, results = _results(rigs, image)
    assert session.code == ExitCode.FAILED, session.output[-4000:]
    failed = {name: v for name, v in results.items() if v[0] != "passed"}
    assert {name.split("[")[0] for name in failed} == {failing}, failed
    assert all(kind == "failure" for kind, _ in failed.values()), failed
    if image in ("fabric-training",):  # one GPU of one tray: only that tray's test fails
        assert list(failed) == [f"{failing}[gb200-tray-02]"], failed
    elif failing not in LEASE_WIDE:  # the image's node fault shows on every tray it booted on
        assert len(failed) == len(TRAYS), failed
    text = "\n".join(message for _, message in failed.values())
    for message in messages:
        assert message in text, text
    if image == "c2c-slow":  # the gate names the series, what it measured and the baseline it missed
        assert re.search(r"gpu=\d.*measured [0-9.]+", text) and "baseline" in text, text
