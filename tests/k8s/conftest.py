"""Real parts for the k8s tests: the simulated node's device plugin and kubelet (gRPC on unix sockets), a real
OpenSSH server on loopback, and the kubelet views the sim images ship."""

from __future__ import annotations

import pytest

from hilt.node.ssh import Node
from hilt.profiles.model import load_profile
from hilt.rig.config import BmcConfig, NodeConfig, SshConfig
from hilt.sim.fabric_view import _View
from hilt.sim.k8s_view import kubelet_view
from tests.sshd import start_sshd


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

    view = _View(load_profile(profile), {})
    topology = parse_topology(view.topo())
    return [VerifiedGpu(i, view.uuid(i), parse_numa(topology.numa_affinity[f"GPU{i}"])) for i in range(view.n)]


@pytest.fixture
def serve_view():
    """``serve_view(spec)`` starts the sim's device plugin and pod-resources servers; all stopped at the end."""
    from hilt.sim.device_plugin_server import serve

    started = []

    def start(spec: dict):
        view, servers = serve(spec)
        started.append((view, servers))
        return view

    yield start
    for view, servers in started:
        view.stop.set()
        for server in servers:
            server.stop(0)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def ssh_node(sshd):
    config = NodeConfig(bmc=BmcConfig(url="https://127.0.0.1:1", username="${U}", password="${P}"),
                        ssh=SshConfig(host="127.0.0.1", port=sshd.port, user="root", key=str(sshd.client_key),
                                      host_key=sshd.host_key, connect_timeout_s=5), profile="sim-islands")
    with Node("gpu-07", config) as node:
        yield node
