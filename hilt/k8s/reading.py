"""Read, in one visit per node, everything the kubelet's side says about its GPUs (the I/O of test_kubernetes).

The device plugin's options, devices and preferred allocations, and the kubelet's allocatable resources, each
part kept with its own error so that a missing pod-resources socket fails the kubelet check only. gRPC comes
from the ``hilt[k8s]`` extra: without it, one line says which extra to install.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hilt.errors import HiltError
from hilt.fabric.nvgroups import NvlinkGroups
from hilt.k8s.checks import preferred_requests
from hilt.k8s.model import AllocatableDevices, PluginDevice, VerifiedGpu
from hilt.profiles.model import KubernetesSpec
from hilt.util.extras import require


class MissingSocket(HiltError):
    """The node has no socket where the profile says the device plugin or the kubelet listens."""


@dataclass
class KubeletReading:
    """What the device plugin and the kubelet answered (None where the part could not be read: see its error)."""

    preferred_available: bool = False
    devices: list[PluginDevice] | None = None
    preferred: list[tuple[int, tuple[str, ...], list[str]]] = field(default_factory=list)
    allocatable: list[AllocatableDevices] | None = None
    plugin_error: Exception | None = None
    kubelet_error: Exception | None = None


def grpc_available(needed_for: str) -> None:
    """MissingExtra (one line naming ``hilt[k8s]``) unless grpcio and protobuf are installed."""
    require("grpc", "k8s", needed_for)
    require("google.protobuf", "k8s", needed_for)


def available_groups(groups: NvlinkGroups, gpus: list[VerifiedGpu], advertised: set[str]) -> NvlinkGroups:
    """The groups restricted to GPUs the plugin advertises (a request must be one it can satisfy in one group)."""
    index = {g.index for g in gpus if g.uuid in advertised}
    kept = tuple(tuple(i for i in group if i in index) for group in groups.groups)
    return NvlinkGroups(tuple(g for g in kept if g), groups.kind)


def read_kubelet(node: Any, spec: KubernetesSpec, gpus: list[VerifiedGpu], groups: NvlinkGroups) -> KubeletReading:
    """Dial the node's device plugin and pod-resources sockets (hilt.k8s.kubelet) and read what they say."""
    grpc_available("test_kubernetes (the kubelet's gRPC sockets)")
    from hilt.k8s.kubelet import DevicePluginClient, MissingSocketError, PodResourcesClient, dial

    reading = KubeletReading()
    try:
        with dial(node, spec.device_plugin_socket) as channel:
            plugin = DevicePluginClient(channel, f"{node.name}: device plugin {spec.device_plugin_socket}")
            reading.preferred_available = bool(plugin.options().get_preferred_allocation_available)
            reading.devices = plugin.devices()
            if reading.preferred_available:
                advertised = [d.id for d in reading.devices]
                reachable = available_groups(groups, gpus, set(advertised))
                for size, must in preferred_requests(reachable, gpus):
                    reading.preferred.append((size, must, plugin.preferred(advertised, must, size)))
    except MissingSocketError as exc:
        reading.plugin_error = MissingSocket(str(exc))
    except HiltError as exc:
        reading.plugin_error = exc
    try:
        with dial(node, spec.pod_resources_socket) as channel:
            reading.allocatable = PodResourcesClient(
                channel, f"{node.name}: kubelet {spec.pod_resources_socket}").allocatable()
    except MissingSocketError as exc:
        reading.kubelet_error = MissingSocket(str(exc))
    except HiltError as exc:
        reading.kubelet_error = exc
    return reading
