"""The kubelet view a sim image ships, with its sockets moved under a test's directory, and the GPUs the sim's
fabric view shows: what the k8s tests serve and check against."""

from __future__ import annotations

from hilt.profiles.model import load_profile
from hilt.sim.fabric_view import FabricView
from hilt.sim.k8s_view import kubelet_view


def view_spec(tmp_path, profile: str = "sim-islands", **declared) -> dict:
    """The kubelet.json a sim image ships for ``profile``, its sockets and GFD file moved under ``tmp_path``."""
    spec = kubelet_view(load_profile(profile), {}, declared)
    spec["device_plugin_socket"] = str(tmp_path / "dp" / "nvidia-gpu.sock")
    spec["pod_resources_socket"] = str(tmp_path / "pr" / "kubelet.sock")
    spec["gfd_features_file"] = str(tmp_path / "features.d" / "gfd")
    return spec


def sim_gpus(profile: str = "sim-islands"):
    """The GPUs the sim's fabric view shows for ``profile`` (UUIDs from its NVML view, NUMA from its topo -m)."""
    from hilt.fabric.topo import parse_topology
    from hilt.k8s.checks import parse_numa
    from hilt.k8s.model import VerifiedGpu

    view = FabricView(load_profile(profile), {})
    topology = parse_topology(view.topo())
    return [VerifiedGpu(i, view.uuid(i), parse_numa(topology.numa_affinity[f"GPU{i}"])) for i in range(view.n)]
