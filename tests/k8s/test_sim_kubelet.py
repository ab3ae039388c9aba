"""The sim's kubelet views (no rack): each Kubernetes fault image fails exactly its check, on the profiles where
it can, and the good image passes all four, as test_kubernetes would judge them.

The image's kubelet.json is served by the node's own server (hilt.sim.device_plugin_server: real gRPC on unix
sockets, here in a temporary directory) and read with hilt's clients; the GFD file it writes and the view's
``nvidia-smi -q`` are read with hilt's readers; the checks are test_kubernetes'.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from hilt.fabric.gpuquery import parse_nvidia_smi_q
from hilt.fabric.nvgroups import profile_groups
from hilt.k8s.checks import (
    check_allocatable,
    check_gfd,
    check_plugin_devices,
    check_preferred,
    preferred_requests,
)
from hilt.k8s.features import read_feature_file
from hilt.k8s.kubelet import DevicePluginClient, PodResourcesClient
from hilt.k8s.reading import available_groups
from hilt.profiles.model import load_profile
from hilt.sim.device_plugin_server import gfd_labels, prefer, write_gfd_file
from hilt.sim.fabric_view import FabricView
from hilt.sim.image import STANDARD_IMAGES
from hilt.sim.k8s_view import smi_query_text
from tests.support.k8s import sim_gpus, view_spec

CHECKS = ("devices", "preferred", "allocatable", "gfd")


def _problems(tmp_path: Path, serve_view, image: str, profile_name: str) -> dict[str, list[str]]:
    profile = load_profile(profile_name)
    spec = view_spec(tmp_path, profile_name, **STANDARD_IMAGES[image].get("kubernetes", {}))
    serve_view(spec)
    smi_text = smi_query_text(FabricView(profile, {}), profile)
    write_gfd_file(Path(spec["gfd_features_file"]), gfd_labels(spec, smi_text))
    gpus, groups = sim_gpus(profile_name), profile_groups(profile)
    with grpc.insecure_channel(f"unix:{spec['device_plugin_socket']}") as channel:
        plugin = DevicePluginClient(channel, "n1")
        devices = plugin.devices()
        advertised = [d.id for d in devices]
        answers = [(s, m, plugin.preferred(advertised, m, s))
                   for s, m in preferred_requests(available_groups(groups, gpus, set(advertised)), gpus)]
    with grpc.insecure_channel(f"unix:{spec['pod_resources_socket']}") as channel:
        allocatable = PodResourcesClient(channel, "n1").allocatable()
    gfd = read_feature_file("gfd", Path(spec["gfd_features_file"]).read_bytes(), datetime.now(UTC))
    smi = parse_nvidia_smi_q(smi_text)
    return {
        "devices": check_plugin_devices(devices, gpus),
        "preferred": [p for s, m, a in answers for p in check_preferred(s, m, a, advertised, groups, gpus)],
        "allocatable": check_allocatable(allocatable, devices),
        "gfd": check_gfd(gfd.labels, [profile.gpu_name] * profile.gpu_count, smi),
    }


@pytest.mark.parametrize(("image", "profile", "failing"), [
    ("good", "sim-4gpu", None), ("good", "sim-islands", None),
    ("plugin-missing-gpu", "sim-4gpu", "devices"), ("plugin-missing-gpu", "sim-islands", "devices"),
    ("plugin-cross-group", "sim-4gpu", None),  # one NVLink group: no preference can cross one
    ("plugin-cross-group", "sim-islands", "preferred"),
    ("gfd-wrong-clique", "sim-4gpu", "gfd"), ("gfd-wrong-clique", "sim-islands", "gfd"),
])
def test_each_kubernetes_image_fails_exactly_its_check(tmp_path, serve_view, image, profile, failing):
    problems = _problems(tmp_path, serve_view, image, profile)
    assert {name for name in CHECKS if problems[name]} == ({failing} if failing else set()), problems
    gpus = sim_gpus(profile)
    if failing == "devices":
        assert problems["devices"] == ["device plugin advertises 3 GPU(s), hilt verified 4",
                                       f"GPU3 ({gpus[3].uuid}): verified by hilt, not advertised by the device plugin"]
    if failing == "gfd":
        (problem,) = problems["gfd"]
        assert problem.startswith("GFD label nvidia.com/gpu.clique=")
    if failing == "preferred":
        assert all("spans NVLink groups" in p for p in problems["preferred"])


def test_preference_policies():
    groups = [["a", "b"], ["c", "d"]]
    assert prefer(list("abcd"), ["c"], 2, groups, "groups") == ["c", "d"]
    assert prefer(list("abcd"), [], 2, groups, "groups") == ["a", "b"]
    assert prefer(list("abd"), [], 2, groups, "groups") == ["a", "b"]
    assert prefer(list("abcd"), ["c"], 2, groups, "cross-group") == ["c", "a"]
    assert prefer(list("abcd"), [], 4, groups, "cross-group") == ["a", "c", "b", "d"]
