"""The kubelet checks' sentences: each names the device (index and UUID) or the label, and what each side says."""

from __future__ import annotations

from hilt.fabric.gpuquery import FabricInfo, GpuQuery
from hilt.fabric.nvgroups import NvlinkGroups
from hilt.k8s.checks import (
    check_allocatable,
    check_gfd,
    check_plugin_devices,
    check_preferred,
    parse_numa,
    preferred_requests,
)
from hilt.k8s.model import AllocatableDevices, PluginDevice, VerifiedGpu

GPUS = [VerifiedGpu(0, "GPU-a", frozenset({0})), VerifiedGpu(1, "GPU-b", frozenset({0})),
        VerifiedGpu(2, "GPU-c", frozenset({1})), VerifiedGpu(3, "GPU-d", None)]
PAIRS = NvlinkGroups(((0, 1), (2, 3)), "direct")


def test_plugin_devices():
    good = [PluginDevice("GPU-a", "Healthy", (0,)), PluginDevice("GPU-b", "Healthy", (0,)),
            PluginDevice("GPU-c", "Healthy", (1,)), PluginDevice("GPU-d", "Healthy", ())]
    assert check_plugin_devices(good, GPUS) == []  # GPU3: topo -m gave no NUMA node, nothing to compare
    bad = [PluginDevice("GPU-a", "Unhealthy", (0,)), PluginDevice("GPU-b", "Healthy", (1,)),
           PluginDevice("GPU-x", "Healthy", (0,)), PluginDevice("GPU-x", "Healthy", (0,)),
           PluginDevice("GPU-d", "Healthy", (0,))]
    assert check_plugin_devices(bad, GPUS) == [
        "device plugin advertises GPU-x twice",
        "GPU2 (GPU-c): verified by hilt, not advertised by the device plugin",
        "GPU0 (GPU-a): device plugin says Unhealthy, not Healthy",
        "GPU1 (GPU-b): device plugin says NUMA node 1, topo -m says 0",
        "device plugin advertises GPU-x, which is not a GPU hilt verified",
    ]


def test_preferred_requests_and_answers():
    assert preferred_requests(PAIRS, GPUS) == [(1, ()), (2, ()), (2, ("GPU-a",)), (2, ("GPU-c",))]
    ids = [g.uuid for g in GPUS]
    assert check_preferred(2, ["GPU-c"], ["GPU-c", "GPU-d"], ids, PAIRS, GPUS) == []
    assert check_preferred(2, ["GPU-c"], ["GPU-a", "GPU-z"], ids, PAIRS, GPUS) == [
        "GetPreferredAllocation(size 2, must include GPU-c) returned GPU-z, not among the available devices",
        "GetPreferredAllocation(size 2, must include GPU-c) left out GPU-c, which it must include",
    ]
    (spans,) = check_preferred(2, [], ["GPU-b", "GPU-c"], ids, PAIRS, GPUS)
    assert spans == ("GetPreferredAllocation(size 2) spans NVLink groups: GPU1 (GPU-b) in NVLink group {GPU0,GPU1}; "
                     "GPU2 (GPU-c) in NVLink group {GPU2,GPU3}")
    assert check_preferred(2, [], ["GPU-a"], ids, PAIRS, GPUS) == [
        "GetPreferredAllocation(size 2) returned 1 device(s) ['GPU-a']"]


def test_allocatable_follows_the_plugin():
    devices = [PluginDevice("GPU-a", "Healthy", (0,)), PluginDevice("GPU-b", "Unhealthy", (0,))]
    assert check_allocatable([AllocatableDevices("nvidia.com/gpu", ("GPU-a",), (0,))], devices) == []
    assert check_allocatable([AllocatableDevices("nvidia.com/gpu", ("GPU-b",), (1,)),
                              AllocatableDevices("example.com/fpga", ("GPU-a",), ())], devices) == [
        "kubelet's allocatable nvidia.com/gpu lacks GPU-a, which the device plugin advertises healthy",
        "kubelet's allocatable nvidia.com/gpu holds GPU-b, which the device plugin does not advertise healthy",
    ]


def _smi(clique: tuple[str, int] | None, memory: int = 81559) -> list[GpuQuery]:
    cluster, clique_id = clique or (None, None)
    fabric = FabricInfo("Completed" if clique else None, None, clique_id, cluster)
    return [GpuQuery(f"0:{i}", "NVIDIA H100 80GB HBM3", f"GPU-{i}", fabric, None, None, memory) for i in range(2)]


def test_gfd_labels():
    names = ["NVIDIA H100 80GB HBM3"] * 2
    labels = {"nvidia.com/gpu.count": "2", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3-SHARED",
              "nvidia.com/gpu.memory": "81559", "nvidia.com/gpu.clique": "u1.7", "nvidia.com/gpu.family": "hopper"}
    assert check_gfd(labels, names, _smi(("u1", 7))) == []
    assert check_gfd({}, names, _smi(None)) == []  # GFD labels nothing: nothing to disagree with
    assert check_gfd(labels | {"nvidia.com/gpu.count": "3", "nvidia.com/gpu.memory": "40960"}, names,
                     _smi(None)) == [
        "GFD label nvidia.com/gpu.count=3, hilt verified 2",
        "GFD label nvidia.com/gpu.memory=40960, hilt verified 81559",
        "GFD label nvidia.com/gpu.clique=u1.7, but nvidia-smi -q shows the GPUs in no single fabric clique "
        "(ClusterUUID/CliqueId N/A or differing)",
    ]
    assert check_gfd({"nvidia.com/gpu.clique": "u1.7"}, names, _smi(("u1", 8))) == [
        "GFD label nvidia.com/gpu.clique=u1.7, hilt verified u1.8"]


def test_numa_cells():
    assert parse_numa("1") == {1} and parse_numa("0,5-7") == {0, 5, 6, 7}
    assert parse_numa("N/A") is None and parse_numa("") is None and parse_numa(None) is None
