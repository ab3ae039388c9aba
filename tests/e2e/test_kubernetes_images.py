"""The hand-off to Kubernetes on the simulated rack (issue 28): a passed gate leaves each node's NFD feature file
with the labels that run verified and an expiry; a run that fails on a node removes that node's file; each
Kubernetes fault image fails exactly its check, naming the node and the device or label.

One rack for the module with one node of each kind: ``gpu-01`` (sim-4gpu, an NVSwitch-like fabric: one NVLink
group) and ``gpu-02`` (sim-islands: two bridged pairs). The generated rig is written as a plain rigs.yaml that
opts in (``kubernetes:``); each session boots the next image through the BMCs, as a rack re-imaged between runs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from hilt.exitcodes import ExitCode
from hilt.k8s.features import read_feature_file
from hilt.k8s.labels import verified_labels
from hilt.node.ssh import Node
from hilt.profiles.model import load_profile
from hilt.record.run_record import RunRecord
from hilt.rig.config import NodeConfig
from tests.support.k8s import sim_gpus
from tests.support.sessions import outcomes, run_suites

NODES = {"gpu-01": "sim-4gpu", "gpu-02": "sim-islands"}
IMAGES = ["good", "plugin-missing-gpu", "plugin-cross-group", "gfd-wrong-clique"]
FEATURES = "/etc/kubernetes/node-feature-discovery/features.d/hilt"
K8S = "suites/test_kubernetes.py"


@pytest.fixture(scope="module")
def rack(tmp_path_factory):
    from hilt.sim.lifecycle import sim_down, sim_up

    rig = sim_up("tk8s", node_specs=list(NODES.items()), subnet=58, images=IMAGES, boot_delay_s=0.5,
                 power_delay_s=0.5, boot_timeout_s=15, owner_pid=os.getpid())
    try:
        directory = tmp_path_factory.mktemp("k8s")
        (directory / "baselines").mkdir()  # no gated entry: with --allow-ungated a clean run's gate passes
        path = directory / "rigs.yaml"
        path.write_text(yaml.safe_dump({
            "default_rig": "k8s", "lease_store": "sqlite://leases.sqlite", "history": "history.sqlite",
            "baselines_dir": str(directory / "baselines"), "images": rig["images"],
            "rigs": {"k8s": {"default_image": "good", "nodes": rig["nodes"], "kubernetes": {"validity_s": 7200}}}}))
        yield path, rig
    finally:
        sim_down("tk8s")


def _feature_file(rig, node: str) -> str | None:
    with Node(node, NodeConfig.model_validate(rig["nodes"][node])) as n:
        return n.read_files([FEATURES])[FEATURES]


def _failing(session) -> dict[str, str]:
    return {name: text for name, (kind, text) in outcomes(session).items() if kind != "passed"}


def test_passed_gate_publishes_verified_labels_then_failing_runs_remove_them_node_by_node(rack):
    rigs, rig = rack
    session = run_suites(rigs, "--image", "good", "--gate", "--allow-ungated",
                         suites=f"suites/test_topology.py suites/test_nvlink.py suites/test_trust.py {K8S}")
    assert session.code == ExitCode.PASS, session.output[-4000:]
    record = RunRecord.model_validate_json((session.reports / "summary.json").read_text())
    assert record.gate is not None and record.gate.outcome == "pass"
    now = datetime.now(UTC)
    for node, profile in NODES.items():
        text = _feature_file(rig, node)
        assert text is not None, f"{node}: no feature file after a passed gate"
        read = read_feature_file("hilt", text.encode(), now)
        expected = verified_labels(record, node, load_profile(profile))
        assert read.labels == {f"feature.node.kubernetes.io/{k}": v for k, v in expected.items()}
        assert read.expires is not None and abs(read.expires - (now + timedelta(seconds=7200))) < timedelta(minutes=2)
    groups = {node: read_feature_file("hilt", _feature_file(rig, node).encode(), now).labels for node in NODES}
    assert groups["gpu-01"]["feature.node.kubernetes.io/nvlink.fabric"] == "nvswitch"
    assert groups["gpu-02"]["feature.node.kubernetes.io/nvlink.groups"] == "2"
    assert groups["gpu-02"]["feature.node.kubernetes.io/nvlink.group-size"] == "2"
    assert groups["gpu-01"]["feature.node.kubernetes.io/trust.secureboot"] == "true"

    # a preference across NVLink groups exists only on the bridged pairs: gpu-02 fails, and only its file goes
    session = run_suites(rigs, "--image", "plugin-cross-group", suites=K8S)
    assert session.code == ExitCode.FAILED, session.output[-4000:]
    failing = _failing(session)
    assert set(failing) == {"test_kubernetes::test_preferred_allocation_keeps_nvlink_groups[gpu-02]"}, failing
    assert "gpu-02: GetPreferredAllocation(size 2) spans NVLink groups: GPU0 (GPU-" in next(iter(failing.values()))
    assert _feature_file(rig, "gpu-02") is None
    assert _feature_file(rig, "gpu-01") is not None  # that run decided nothing against gpu-01


@pytest.mark.parametrize(("image", "check"), [
    ("plugin-missing-gpu", "test_device_plugin_advertises_verified_gpus"),
    ("gfd-wrong-clique", "test_gfd_labels_match_verified"),
])
def test_each_fault_image_fails_exactly_its_check_on_every_node(rack, image, check):
    rigs, rig = rack
    session = run_suites(rigs, "--image", image, suites=K8S)
    assert session.code == ExitCode.FAILED, session.output[-4000:]
    failing = _failing(session)
    assert set(failing) == {f"test_kubernetes::{check}[{node}]" for node in NODES}, failing
    for node, profile in NODES.items():
        text = failing[f"test_kubernetes::{check}[{node}]"]
        if image == "plugin-missing-gpu":  # names the node and the GPU the plugin left out
            assert f"{node}: {sim_gpus(profile)[3]}: verified by hilt, not advertised by the device plugin" in text
        else:  # names the node and the label
            assert f"{node}: GFD label nvidia.com/gpu.clique=" in text
        assert _feature_file(rig, node) is None  # the run failed on every node: no file is left
