"""The kubelet clients against the simulated node's real gRPC servers: directly on the unix sockets, and through
the SSH relay (a real OpenSSH server on loopback) as test_kubernetes reaches a remote node."""

from __future__ import annotations

import grpc
import pytest

from hilt.fabric.nvgroups import profile_groups
from hilt.k8s.checks import check_allocatable, check_plugin_devices, check_preferred
from hilt.k8s.kubelet import DevicePluginClient, PodResourcesClient
from hilt.k8s.reading import MissingSocket, read_kubelet
from hilt.profiles.model import KubernetesSpec, load_profile
from tests.support.k8s import sim_gpus, view_spec


def test_device_plugin_and_kubelet_answer_over_grpc(tmp_path, serve_view):
    spec = view_spec(tmp_path)
    serve_view(spec)
    gpus = sim_gpus()
    with grpc.insecure_channel(f"unix:{spec['device_plugin_socket']}") as channel:
        plugin = DevicePluginClient(channel, "gpu-07")
        assert plugin.options().get_preferred_allocation_available
        devices = plugin.devices()
        assert [(d.id, d.health, d.numa) for d in devices] == [(g.uuid, "Healthy", (min(g.numa),)) for g in gpus]
        ids = [d.id for d in devices]
        assert plugin.preferred(ids, [ids[2]], 2) == [ids[2], ids[3]]  # GPU2's bridged partner
        assert sorted(plugin.preferred(ids, [], 2)) in (sorted(ids[:2]), sorted(ids[2:]))
    with grpc.insecure_channel(f"unix:{spec['pod_resources_socket']}") as channel:
        allocatable = PodResourcesClient(channel, "gpu-07").allocatable()
    assert check_allocatable(allocatable, devices) == []
    assert {d for entry in allocatable for d in entry.ids} == set(ids)


def _spec(spec: dict) -> KubernetesSpec:
    return KubernetesSpec(device_plugin_socket=spec["device_plugin_socket"],
                          pod_resources_socket=spec["pod_resources_socket"])


def test_read_through_the_ssh_relay_finds_a_right_node_right(tmp_path, serve_view, ssh_node):
    spec = view_spec(tmp_path)
    serve_view(spec)
    gpus, groups = sim_gpus(), profile_groups(load_profile("sim-islands"))
    reading = read_kubelet(ssh_node, _spec(spec), gpus, groups)
    assert reading.plugin_error is None and reading.kubelet_error is None
    assert check_plugin_devices(reading.devices, gpus) == []
    assert [(size, len(must)) for size, must, _ in reading.preferred] == [(1, 0), (2, 0), (2, 1), (2, 1)]
    advertised = [d.id for d in reading.devices]
    assert all(check_preferred(s, m, a, advertised, groups, gpus) == [] for s, m, a in reading.preferred)
    assert check_allocatable(reading.allocatable, reading.devices) == []


def test_read_through_the_relay_catches_a_cross_group_preference(tmp_path, serve_view, ssh_node):
    spec = view_spec(tmp_path, preferred="cross-group")
    serve_view(spec)
    gpus, groups = sim_gpus(), profile_groups(load_profile("sim-islands"))
    reading = read_kubelet(ssh_node, _spec(spec), gpus, groups)
    advertised = [d.id for d in reading.devices]
    problems = [p for s, m, a in reading.preferred for p in check_preferred(s, m, a, advertised, groups, gpus)]
    assert problems and all("spans NVLink groups" in p for p in problems)
    assert f"GPU0 ({gpus[0].uuid}) in NVLink group {{GPU0,GPU1}}" in problems[0]
    assert f"GPU2 ({gpus[2].uuid}) in NVLink group {{GPU2,GPU3}}" in problems[0]


def test_a_node_without_the_sockets_says_which_and_where(tmp_path, ssh_node):
    spec = view_spec(tmp_path)  # nothing serves it
    reading = read_kubelet(ssh_node, _spec(spec), sim_gpus(), profile_groups(load_profile("sim-islands")))
    assert isinstance(reading.plugin_error, MissingSocket)
    assert str(reading.plugin_error) == (f"gpu-07: no socket at {spec['device_plugin_socket']} "
                                         "(is the device plugin / kubelet running?)")
    assert isinstance(reading.kubelet_error, MissingSocket) and spec["pod_resources_socket"] in str(
        reading.kubelet_error)


@pytest.mark.parametrize("size", [1, 3])
def test_grpc_errors_name_the_node_and_the_call(tmp_path, serve_view, size):
    from hilt.k8s.kubelet import KubeletCallError

    spec = view_spec(tmp_path)
    serve_view(spec)
    with grpc.insecure_channel(f"unix:{spec['device_plugin_socket']}") as channel:
        plugin = DevicePluginClient(channel, "gpu-07: device plugin")
        ids = [d.id for d in plugin.devices()]
        assert len(plugin.preferred(ids, [], size)) == size
    with grpc.insecure_channel(f"unix:{tmp_path}/nothing.sock") as channel:
        expected = r"^gpu-07: device plugin: GetDevicePluginOptions failed: UNAVAILABLE"
        with pytest.raises(KubeletCallError, match=expected):
            DevicePluginClient(channel, "gpu-07: device plugin", timeout=2).options()
