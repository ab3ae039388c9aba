"""Clients of what the kubelet believes about a node: the device plugin's socket and the pod-resources socket.

Real gRPC (grpcio, the ``hilt[k8s]`` extra) over the node's unix sockets, reached through
:class:`hilt.k8s.relay.SocketRelay`; the messages are :mod:`hilt.fabric.kubelet_api`'s. Each call has a deadline, and a
socket that is not there is said so before any dial, naming the node and the path.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import grpc

from hilt.errors import NodeError
from hilt.fabric import kubelet_api as wire
from hilt.k8s.model import AllocatableDevices, PluginDevice
from hilt.k8s.relay import SocketRelay, StreamingNode

DEVICE_PLUGIN_SOCKET = "/var/lib/kubelet/device-plugins/nvidia-gpu.sock"
POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"


class KubeletCallError(NodeError):
    """A call to the device plugin or the kubelet failed (the transport, or the server's status)."""


class MissingSocketError(KubeletCallError):
    """Nothing listens where the socket should be: the node runs no device plugin (or kubelet) there."""


def _methods(channel: grpc.Channel, service: str, api: Any, methods: dict[str, tuple[str, str, bool]]
             ) -> dict[str, Any]:
    calls = {}
    for method, (request, response, streaming) in methods.items():
        make = channel.unary_stream if streaming else channel.unary_unary
        calls[method] = make(f"/{service}/{method}", request_serializer=getattr(api, request).SerializeToString,
                             response_deserializer=getattr(api, response).FromString)
    return calls


class DevicePluginClient:
    """The ``v1beta1.DevicePlugin`` service, as the kubelet calls it."""

    def __init__(self, channel: grpc.Channel, where: str, timeout: float = 10.0):
        self.where, self.timeout = where, timeout
        self._call = _methods(channel, wire.DEVICE_PLUGIN_SERVICE, wire.deviceplugin, wire.DEVICE_PLUGIN_METHODS)

    def _fail(self, method: str, exc: grpc.RpcError) -> KubeletCallError:
        code = exc.code().name if hasattr(exc, "code") else "?"
        detail = exc.details() if hasattr(exc, "details") else str(exc)
        return KubeletCallError(f"{self.where}: {method} failed: {code}: {detail}")

    def options(self) -> Any:
        try:
            return self._call["GetDevicePluginOptions"](wire.deviceplugin.Empty(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise self._fail("GetDevicePluginOptions", exc) from None

    def devices(self) -> list[PluginDevice]:
        """The first list ListAndWatch sends (the stream stays open on a real plugin: it is cancelled)."""
        stream = self._call["ListAndWatch"](wire.deviceplugin.Empty(), timeout=self.timeout)
        try:
            first = next(iter(stream))
        except StopIteration:
            raise KubeletCallError(f"{self.where}: ListAndWatch ended without sending a device list") from None
        except grpc.RpcError as exc:
            raise self._fail("ListAndWatch", exc) from None
        finally:
            stream.cancel()
        return [PluginDevice(d.ID, d.health, tuple(n.ID for n in d.topology.nodes)) for d in first.devices]

    def preferred(self, available: Sequence[str], must_include: Sequence[str], size: int) -> list[str]:
        api = wire.deviceplugin
        request = api.PreferredAllocationRequest(container_requests=[api.ContainerPreferredAllocationRequest(
            available_deviceIDs=list(available), must_include_deviceIDs=list(must_include), allocation_size=size)])
        try:
            response = self._call["GetPreferredAllocation"](request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise self._fail(f"GetPreferredAllocation(size {size})", exc) from None
        if len(response.container_responses) != 1:
            raise KubeletCallError(f"{self.where}: GetPreferredAllocation(size {size}) answered "
                                   f"{len(response.container_responses)} container responses for 1 request")
        return list(response.container_responses[0].deviceIDs)


class PodResourcesClient:
    """The kubelet's ``v1.PodResourcesLister``."""

    def __init__(self, channel: grpc.Channel, where: str, timeout: float = 10.0):
        self.where, self.timeout = where, timeout
        self._call = _methods(channel, wire.POD_RESOURCES_SERVICE, wire.podresources, wire.POD_RESOURCES_METHODS)

    def allocatable(self) -> list[AllocatableDevices]:
        try:
            response = self._call["GetAllocatableResources"](wire.podresources.AllocatableResourcesRequest(),
                                                             timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "?"
            raise KubeletCallError(f"{self.where}: GetAllocatableResources failed: {code}: "
                                   f"{exc.details() if hasattr(exc, 'details') else exc}") from None
        return [AllocatableDevices(d.resource_name, tuple(d.device_ids), tuple(n.ID for n in d.topology.nodes))
                for d in response.devices]


@contextmanager
def dial(node: StreamingNode, path: str) -> Iterator[grpc.Channel]:
    """A gRPC channel to unix socket ``path`` on ``node``; KubeletCallError when the node has no socket there."""
    probe = node.run(["sh", "-c", f"test -S {shlex.quote(path)}"], timeout=30, check=False)  # type: ignore[attr-defined]
    if probe.exit_code != 0:
        raise MissingSocketError(f"{node.name}: no socket at {path} (is the device plugin / kubelet running?)")
    with SocketRelay(node, path) as relay, grpc.insecure_channel(relay.target) as channel:
        yield channel
