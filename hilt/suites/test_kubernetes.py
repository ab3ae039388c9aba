"""What the kubelet will believe about the node matches what hilt verified (docs/kubernetes.md).

Per node, where the profile has a ``kubernetes:`` section: the device plugin advertises exactly the verified
GPUs (UUIDs), healthy, on the NUMA nodes ``topo -m`` shows; its preferred allocations keep to one NVLink group
(advisory on NVSwitch fabrics, where NVIDIA's allocator sees every pair as equal); the kubelet hands out what
the plugin advertises; GPU Feature Discovery's labels, where the node has its file, agree with the verified
product, GPU count, memory and fabric clique. The sockets are dialled over the node's SSH (hilt.k8s.relay).
"""

from __future__ import annotations

import json
import logging
import warnings
from datetime import UTC, datetime
from pathlib import PurePosixPath

import allure
import pytest

from hilt.errors import InfrastructureError
from hilt.fabric.gpuquery import parse_nvidia_smi_q
from hilt.fabric.nvgroups import profile_groups
from hilt.k8s.checks import check_allocatable, check_gfd, check_plugin_devices, check_preferred, parse_numa
from hilt.k8s.features import read_feature_file
from hilt.k8s.model import VerifiedGpu
from hilt.k8s.reading import MissingSocket, read_kubelet

log = logging.getLogger(__name__)


@pytest.fixture
def kubernetes(profile):
    if profile.kubernetes is None:
        pytest.skip(f"profile {profile.name} has no kubernetes: section")
    return profile.kubernetes


@pytest.fixture
def verified_gpus(fabric_snapshot) -> list[VerifiedGpu]:
    """The GPUs hilt verifies (NVML: UUIDs, in index order) with their NUMA nodes from ``topo -m``."""
    topology = fabric_snapshot.topology()
    return [VerifiedGpu(i, gpu.uuid, parse_numa(topology.numa_affinity.get(f"GPU{i}")))
            for i, gpu in enumerate(fabric_snapshot.nvml().gpus)]


@pytest.fixture(scope="session")
def kubelet_readings_by_node() -> dict:
    """Each node's reading, kept for the session (a star import of this module carries it: no leading _)."""
    return {}


@pytest.fixture
def kubelet_reading(node, profile, kubernetes, verified_gpus, kubelet_readings_by_node):
    """The device plugin's and kubelet's answers, read once per node."""
    if node.name not in kubelet_readings_by_node:
        reading = read_kubelet(node, kubernetes, verified_gpus, profile_groups(profile))
        kubelet_readings_by_node[node.name] = reading
        allure.attach(json.dumps({
            "devices": [d.__dict__ for d in reading.devices or []],
            "preferred_allocation_available": reading.preferred_available,
            "preferred": [{"size": s, "must_include": m, "answer": a} for s, m, a in reading.preferred],
            "allocatable": [d.__dict__ for d in reading.allocatable or []],
            "errors": [str(e) for e in (reading.plugin_error, reading.kubelet_error) if e]}, indent=1, default=list),
            name="kubelet view", attachment_type=allure.attachment_type.JSON)
    return kubelet_readings_by_node[node.name]


def _fail(node, problems: list[str]) -> None:
    if problems:
        pytest.fail("\n".join(f"{node.name}: {p}" for p in problems), pytrace=False)


def _need(error: Exception | None) -> None:
    """A part that could not be read: no socket is the node's failure; a broken call is the rig's."""
    if isinstance(error, MissingSocket):
        pytest.fail(str(error), pytrace=False)
    if error is not None:
        raise error if isinstance(error, InfrastructureError) else InfrastructureError(str(error))


def test_device_plugin_advertises_verified_gpus(node, kubelet_reading, verified_gpus):
    _need(kubelet_reading.plugin_error)
    _fail(node, check_plugin_devices(kubelet_reading.devices or [], verified_gpus))


def test_preferred_allocation_keeps_nvlink_groups(node, profile, kubelet_reading, verified_gpus):
    _need(kubelet_reading.plugin_error)
    groups = profile_groups(profile)
    if groups.largest < 2:
        pytest.skip(f"profile {profile.name} has no NVLink group of two or more GPUs: nothing to keep together")
    if not kubelet_reading.preferred_available:
        if groups.kind == "direct" and len(groups.groups) > 1:
            _fail(node, ["the device plugin offers no preferred allocation (GetDevicePluginOptions): the NVLink "
                         f"groups {[list(g) for g in groups.groups]} cannot reach placement"])
        pytest.skip("the device plugin offers no preferred allocation (GetDevicePluginOptions)")
    advertised = [d.id for d in kubelet_reading.devices or []]
    problems = []
    for size, must, answer in kubelet_reading.preferred:
        problems += check_preferred(size, must, answer, advertised, groups, verified_gpus)
    if problems and groups.kind == "nvswitch":
        # NVIDIA's allocator scores direct NVLink pairs; on an NVSwitch board every pair is equal to it
        text = "\n".join(f"{node.name}: {p}" for p in problems)
        allure.attach(text, name="preferred allocation (advisory)", attachment_type=allure.attachment_type.TEXT)
        warnings.warn(f"advisory on an NVSwitch fabric: {text}", stacklevel=1)
        return
    _fail(node, problems)


def test_kubelet_allocatable_matches_device_plugin(node, kubernetes, kubelet_reading):
    _need(kubelet_reading.plugin_error)
    _need(kubelet_reading.kubelet_error)
    _fail(node, check_allocatable(kubelet_reading.allocatable or [], kubelet_reading.devices or [],
                                  kubernetes.resource))


def test_gfd_labels_match_verified(node, kubernetes, fabric_snapshot):
    path = kubernetes.gfd_features_file
    text = node.read_files([path]).get(path)
    if text is None:
        pytest.skip(f"{node.name}: no GPU Feature Discovery file at {path}: no GFD labels to check")
    features = read_feature_file(PurePosixPath(path).name, text.encode(), datetime.now(UTC))
    allure.attach(text, name=f"GFD labels ({path})", attachment_type=allure.attachment_type.TEXT)
    query = node.run(["nvidia-smi", "-q"], timeout=120, check=False)
    if query.exit_code != 0:
        raise InfrastructureError(f"{node.name}: nvidia-smi -q exited {query.exit_code}: {query.stderr.strip()[:300]}")
    smi = parse_nvidia_smi_q(query.stdout)
    names = [g.name for g in fabric_snapshot.nvml().gpus]
    _fail(node, check_gfd(features.labels, names, smi))
