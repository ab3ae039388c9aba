"""What the kubelet believes, against what hilt verified: pure comparisons, each problem a sentence naming the
device (index and UUID) or the label, so a person reading a failed run knows what to look at.

The verified side is the node as hilt's other suites check it: the GPUs NVML lists (UUIDs, test_nvml), the NUMA
affinity ``nvidia-smi topo -m`` prints (test_topology) and the NVLink groups of the platform's topology
(hilt.fabric.nvgroups). The kubelet's side: the device plugin's ListAndWatch and GetPreferredAllocation, the
kubelet's GetAllocatableResources, and GPU Feature Discovery's labels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hilt.fabric.gpuquery import GpuQuery, node_clique
from hilt.fabric.nvgroups import NvlinkGroups
from hilt.k8s.model import AllocatableDevices, PluginDevice, VerifiedGpu

HEALTHY = "Healthy"  # the device plugin API's constant (pluginapi.Healthy)
GPU_RESOURCE = "nvidia.com/gpu"


def parse_numa(text: str | None) -> frozenset[int] | None:
    """topo -m's NUMA Affinity cell (``1``, ``0,5-11``) as a set; None for ``N/A``, empty or unreadable."""
    if not text or not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text.strip()):
        return None
    nodes: set[int] = set()
    for part in text.strip().split(","):
        low, _, high = part.partition("-")
        nodes.update(range(int(low), int(high or low) + 1))
    return frozenset(nodes)


def check_plugin_devices(devices: Sequence[PluginDevice], gpus: Sequence[VerifiedGpu]) -> list[str]:
    """The plugin advertises exactly the verified GPUs, by UUID, each healthy, on the NUMA node topo -m says."""
    problems = []
    by_id: dict[str, PluginDevice] = {}
    for device in devices:
        if device.id in by_id:
            problems.append(f"device plugin advertises {device.id} twice")
        by_id[device.id] = device
    verified = {g.uuid: g for g in gpus}
    if len(by_id) != len(verified):
        problems.append(f"device plugin advertises {len(by_id)} GPU(s), hilt verified {len(verified)}")
    for gpu in gpus:
        if gpu.uuid not in by_id:
            problems.append(f"{gpu}: verified by hilt, not advertised by the device plugin")
    for device in by_id.values():
        gpu = verified.get(device.id)
        if gpu is None:
            problems.append(f"device plugin advertises {device.id}, which is not a GPU hilt verified")
            continue
        if device.health != HEALTHY:
            problems.append(f"{gpu}: device plugin says {device.health or 'no health'}, not {HEALTHY}")
        if gpu.numa is not None and (not device.numa or not set(device.numa) <= gpu.numa):
            shown = ",".join(map(str, device.numa)) or "none"
            problems.append(f"{gpu}: device plugin says NUMA node {shown}, topo -m says "
                            f"{','.join(map(str, sorted(gpu.numa)))}")
    return problems


def preferred_requests(groups: NvlinkGroups, gpus: Sequence[VerifiedGpu]) -> list[tuple[int, tuple[str, ...]]]:
    """The GetPreferredAllocation requests that show whether the plugin knows the groups: every size up to the
    largest group, with nothing required, and for each group of at least that size with its first GPU required."""
    uuid = {g.index: g.uuid for g in gpus}
    requests: list[tuple[int, tuple[str, ...]]] = []
    for size in range(1, groups.largest + 1):
        requests.append((size, ()))
        for group in groups.groups:
            if len(group) >= size >= 2 and group[0] in uuid:
                requests.append((size, (uuid[group[0]],)))
    return requests


def check_preferred(size: int, must_include: Sequence[str], answer: Sequence[str], available: Sequence[str],
                    groups: NvlinkGroups, gpus: Sequence[VerifiedGpu]) -> list[str]:
    """One preferred allocation: ``size`` devices, from ``available``, holding ``must_include``, of one group."""
    asked = f"GetPreferredAllocation(size {size}" + (f", must include {', '.join(must_include)})" if must_include
                                                      else ")")
    problems = []
    if len(answer) != size or len(set(answer)) != len(answer):
        problems.append(f"{asked} returned {len(answer)} device(s) {list(answer)}")
    unknown = [d for d in answer if d not in available]
    if unknown:
        problems.append(f"{asked} returned {', '.join(unknown)}, not among the available devices")
    missing = [d for d in must_include if d not in answer]
    if missing:
        problems.append(f"{asked} left out {', '.join(missing)}, which it must include")
    index = {g.uuid: g for g in gpus}
    chosen = [index[d] for d in answer if d in index]
    spans = {groups.group_of(g.index) for g in chosen}
    if len(spans) > 1 or None in spans and len(chosen) > 1:
        shown = "; ".join(f"{g} in NVLink group {_group(groups.group_of(g.index))}" for g in chosen)
        problems.append(f"{asked} spans NVLink groups: {shown}")
    return problems


def _group(group: tuple[int, ...] | None) -> str:
    return "{" + ",".join(f"GPU{i}" for i in group) + "}" if group else "(none)"


def check_allocatable(allocatable: Sequence[AllocatableDevices], devices: Sequence[PluginDevice],
                      resource: str = GPU_RESOURCE) -> list[str]:
    """The kubelet hands out the devices the plugin advertises healthy, with the plugin's NUMA nodes."""
    problems = []
    kubelet: dict[str, tuple[int, ...]] = {}
    for entry in allocatable:
        if entry.resource == resource:
            for device_id in entry.ids:
                kubelet[device_id] = entry.numa
    healthy = {d.id: d for d in devices if d.health == HEALTHY}
    for device_id, device in healthy.items():
        if device_id not in kubelet:
            problems.append(f"kubelet's allocatable {resource} lacks {device_id}, which the device plugin "
                            "advertises healthy")
        elif kubelet[device_id] and device.numa and set(kubelet[device_id]) != set(device.numa):
            problems.append(f"{device_id}: kubelet says NUMA node {kubelet[device_id]}, the device plugin "
                            f"{device.numa}")
    for device_id in sorted(set(kubelet) - set(healthy)):
        problems.append(f"kubelet's allocatable {resource} holds {device_id}, which the device plugin does not "
                        "advertise healthy")
    return problems


def gfd_product(name: str) -> str:
    """GFD's ``nvidia.com/gpu.product`` for an NVML name: spaces become dashes."""
    return name.replace(" ", "-")


def check_gfd(labels: dict[str, str], gpu_names: Sequence[str], smi: Sequence[GpuQuery]) -> list[str]:
    """GFD's labels that the node has agree with the verified product, GPU count, memory and fabric clique."""
    problems = []

    def compare(key: str, expected: str | None, why: str) -> None:
        found = labels.get(key)
        if found is None:
            return
        if expected is None:
            problems.append(f"GFD label {key}={found}, but {why}")
        elif found != expected and not (key.endswith(".product") and found == expected + "-SHARED"):
            problems.append(f"GFD label {key}={found}, hilt verified {expected}")

    compare("nvidia.com/gpu.count", str(len(gpu_names)) if gpu_names else None, "hilt verified no GPU")
    compare("nvidia.com/gpu.product", gfd_product(gpu_names[0]) if gpu_names else None, "hilt verified no GPU")
    memory = smi[0].memory_total_mib if smi else None
    compare("nvidia.com/gpu.memory", str(memory) if memory is not None else None,
            "nvidia-smi -q shows no frame buffer total")
    compare("nvidia.com/gpu.clique", node_clique(list(smi)),
            "nvidia-smi -q shows the GPUs in no single fabric clique (ClusterUUID/CliqueId N/A or differing)")
    return problems
