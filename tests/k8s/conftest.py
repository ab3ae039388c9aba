"""Real parts for the k8s tests: the simulated node's device plugin and kubelet (gRPC on unix sockets), a real
OpenSSH server on loopback, and the kubelet views the sim images ship."""

from __future__ import annotations

import pytest

from hilt.node.ssh import Node
from hilt.rig.config import BmcConfig, NodeConfig, SshConfig
from tests.support.sshd import start_sshd


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
                        ssh=SshConfig(host="127.0.0.1", port=sshd.port, user=sshd.user, key=str(sshd.client_key),
                                      host_key=sshd.host_key, connect_timeout_s=5), profile="sim-islands")
    with Node("gpu-07", config) as node:
        yield node
