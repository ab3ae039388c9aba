"""What the kubelet of a simulated node believes: the device plugin's devices, its preferred allocation, the
kubelet's allocatable resources, GPU Feature Discovery's labels, and the ``nvidia-smi -q`` they derive from.

Written into each view of an image (per profile, next to the fabric view it answers for), from that view: the
GPUs' UUIDs are the NVML view's, their NUMA nodes the ``topo -m`` view's, the NVLink groups the profile's. On a
booted node :mod:`hilt.sim.device_plugin_server` reads ``/opt/hilt-sim/k8s/kubelet.json``, writes GFD's feature
file and serves the device plugin and pod-resources APIs over real gRPC on the kubelet's unix sockets, as
NVIDIA's k8s-device-plugin, GFD and the kubelet do on a real node.

An image's ``kubernetes`` manifest field bends one of them (``{}``: a node whose kubelet is right):
``plugin_missing`` (default 0): the device plugin advertises this many GPUs fewer (the last ones);
``unhealthy`` ([]): GPU indices the plugin reports ``Unhealthy``;
``preferred`` (``groups``): ``groups`` keeps preferred allocations in one NVLink group, ``cross-group`` takes one
GPU of each group in turn (an allocator that does not know the groups);
``gfd_clique`` (``right``): ``wrong`` makes GFD's ``nvidia.com/gpu.clique`` name another clique than the GPUs'.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from hilt.fabric.nvgroups import profile_groups
from hilt.fabric.topo import parse_topology
from hilt.profiles.model import Profile
from hilt.sim.fabric_view import FabricView, write_file

SPEC_PATH = "opt/hilt-sim/k8s/kubelet.json"
KUBERNETES_OK: dict[str, Any] = {"plugin_missing": 0, "unhealthy": [], "preferred": "groups", "gfd_clique": "right"}
#: Frame buffer totals as ``nvidia-smi -q`` prints them (MiB); another name gets the H100 80GB's.
FB_TOTAL_MIB = {"NVIDIA H100 80GB HBM3": 81559, "NVIDIA H100 NVL": 95830, "NVIDIA H200": 143771}
CLIQUE_ID = 32766  # as GB200/GB300 compute trays show it with one NVLink partition


def kubernetes_spec(declared: dict[str, Any] | None) -> dict[str, Any]:
    """The image's declared kubelet view over the good defaults; an unknown or bad field names the valid ones."""
    declared = declared or {}
    unknown = sorted(set(declared) - set(KUBERNETES_OK))
    if unknown:
        raise ValueError(f"kubernetes: unknown field(s) {unknown}; valid: {sorted(KUBERNETES_OK)}")
    spec = {**KUBERNETES_OK, **declared}
    if spec["preferred"] not in ("groups", "cross-group"):
        raise ValueError(f"kubernetes.preferred: {spec['preferred']!r}; valid: groups, cross-group")
    if spec["gfd_clique"] not in ("right", "wrong"):
        raise ValueError(f"kubernetes.gfd_clique: {spec['gfd_clique']!r}; valid: right, wrong")
    if not isinstance(spec["plugin_missing"], int) or spec["plugin_missing"] < 0:
        raise ValueError("kubernetes.plugin_missing: a count of GPUs (0 or more)")
    return spec


def fabric_ids(profile: Profile) -> tuple[str, str] | None:
    """(ClusterUUID, CliqueId) of the profile's NVLink fabric; None where the GPUs join no fabric (no NVSwitch)."""
    if profile_groups(profile).kind != "nvswitch":
        return None
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hilt-sim/fabric/{profile.name}")), str(CLIQUE_ID)


def smi_query_text(view: FabricView, profile: Profile) -> str:
    """``nvidia-smi -q`` of the view's GPUs: the sections GFD's labels come from, in the driver's layout."""
    ids = fabric_ids(profile)
    memory = FB_TOTAL_MIB.get(view.gpu_name, 81559)
    out = ["", "==============NVSMI LOG==============", "",
           f"{'Timestamp':<42}: Tue Mar  5 22:15:33 2024", f"{'Driver Version':<42}: {view.driver}",
           f"{'CUDA Version':<42}: 12.4", "", f"{'Attached GPUs':<42}: {view.n}"]
    for i in range(view.n):
        rows = [("Product Name", view.gpu_name), ("Product Brand", "NVIDIA"), ("Product Architecture", "Hopper"),
                ("Persistence Mode", "Enabled"), ("GPU UUID", view.uuid(i)), ("Minor Number", str(i)),
                ("VBIOS Version", view.vbios[i]), ("MultiGPU Board", "No")]
        out.append("GPU 0000" + view.bus(i).upper())
        out += [f"    {k:<38}: {v}" for k, v in rows]
        out += ["    FB Memory Usage", f"        {'Total':<34}: {memory} MiB", f"        {'Reserved':<34}: 329 MiB",
                f"        {'Used':<34}: 0 MiB", f"        {'Free':<34}: {memory - 329} MiB"]
        state, status, clique, cluster = ("Completed", "Success", ids[1], ids[0]) if ids else ("N/A",) * 4
        out += ["    Fabric", f"        {'State':<34}: {state}", f"        {'Status':<34}: {status}",
                f"        {'CliqueId':<34}: {clique}", f"        {'ClusterUUID':<34}: {cluster}",
                "        Health", f"            {'Bandwidth':<30}: {'Full' if ids else 'N/A'}"]
        out.append(f"    {'Processes':<38}: None")
    return "\n".join(out) + "\n"


def _gfd_labels(view: FabricView) -> dict[str, str]:
    """The labels GPU Feature Discovery writes for these GPUs that do not depend on ``nvidia-smi -q``; memory and
    clique are read on the node at boot, as GFD reads them from NVML (hilt.sim.device_plugin_server)."""
    major, minor, rev = (view.driver.split(".") + ["", "", ""])[:3]
    return {
        "nvidia.com/cuda.driver.major": major, "nvidia.com/cuda.driver.minor": minor,
        "nvidia.com/cuda.driver.rev": rev, "nvidia.com/gpu.compute.major": "9", "nvidia.com/gpu.compute.minor": "0",
        "nvidia.com/gpu.count": str(view.n), "nvidia.com/gpu.family": "hopper",
        "nvidia.com/gpu.product": view.gpu_name.replace(" ", "-"), "nvidia.com/gpu.replicas": "1",
        "nvidia.com/mig.capable": "false",
    }


def kubelet_view(profile: Profile, fabric_spec: dict[str, Any], declared: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON the node's device plugin server answers from (hilt.sim.device_plugin_server)."""
    spec = kubernetes_spec(declared)
    view = FabricView(profile, fabric_spec or {})
    topology = parse_topology(view.topo())
    kubernetes = profile.kubernetes
    devices = []
    for i in range(view.n - min(spec["plugin_missing"], view.n)):
        numa = topology.numa_affinity.get(f"GPU{i}")
        devices.append({"id": view.uuid(i), "health": "Unhealthy" if i in spec["unhealthy"] else "Healthy",
                        "numa": [int(numa)] if numa and numa.isdigit() else []})
    return {
        "resource": kubernetes.resource if kubernetes else "nvidia.com/gpu",
        "device_plugin_socket": kubernetes.device_plugin_socket if kubernetes else
        "/var/lib/kubelet/device-plugins/nvidia-gpu.sock",
        "pod_resources_socket": kubernetes.pod_resources_socket if kubernetes else
        "/var/lib/kubelet/pod-resources/kubelet.sock",
        "gfd_features_file": kubernetes.gfd_features_file if kubernetes else
        "/etc/kubernetes/node-feature-discovery/features.d/gfd",
        "devices": devices,
        "groups": [[view.uuid(i) for i in group] for group in profile_groups(profile).groups],
        "preferred": spec["preferred"],
        "gfd_labels": _gfd_labels(view),
        "gfd_clique": spec["gfd_clique"],
    }


def write_k8s_view(root: Path, profile: Profile, fabric_spec: dict[str, Any], declared: dict[str, Any] | None
                   ) -> None:
    """The kubelet's view of a node of ``profile`` under ``root`` (an image's view), and ``nvidia-smi -q``."""
    root = Path(root)
    view = FabricView(profile, fabric_spec or {})
    write_file(root / SPEC_PATH, json.dumps(kubelet_view(profile, fabric_spec, declared), indent=1) + "\n")
    text = smi_query_text(view, profile)
    for key in ("-q_", "--query_"):  # the sim's nvidia-smi prints these files for `-q` / `--query`
        write_file(root / "opt/hilt-sim/nvidia-smi" / f"{key}.txt", text)
