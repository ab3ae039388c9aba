"""The kubelet's gRPC wire formats, built here from the APIs' published field numbers.

Data, like the other formats of what a node shows: hilt.k8s reads a node's device plugin and kubelet with these
messages, and the simulated rack serves them (hilt.sim.device_plugin_server), neither importing the other.

Two APIs: the device plugin API ``v1beta1`` (k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1/api.proto: the
``DevicePlugin`` service a plugin such as NVIDIA's serves on ``/var/lib/kubelet/device-plugins/<name>.sock``) and
the pod-resources API ``v1`` (k8s.io/kubelet/pkg/apis/podresources/v1/api.proto: ``PodResourcesLister`` on
``/var/lib/kubelet/pod-resources/kubelet.sock``). The messages are built with protobuf's descriptor API in a
pool of their own instead of generated code: no protoc step at install, and what goes on the wire is exactly
the field numbers and types listed below (what a peer reads), which tests/k8s/test_wire.py checks byte by byte.

Only the messages hilt and the simulated rack use are declared; a field a peer sends that is not declared here
is kept as an unknown field and ignored, as protobuf does.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_TYPES = {"string": _F.TYPE_STRING, "bool": _F.TYPE_BOOL, "int32": _F.TYPE_INT32, "int64": _F.TYPE_INT64,
          "uint64": _F.TYPE_UINT64}

# (message, [(field, number, type, repeated)]); a type that is not a scalar is a message of the same package,
# "map" a map<string, string>. Field numbers as published in the two api.proto files.
DEVICE_PLUGIN_V1BETA1: list[tuple[str, list[tuple[str, int, str, bool]]]] = [
    ("Empty", []),
    ("DevicePluginOptions", [("pre_start_required", 1, "bool", False),
                             ("get_preferred_allocation_available", 2, "bool", False)]),
    ("NUMANode", [("ID", 1, "int64", False)]),
    ("TopologyInfo", [("nodes", 1, "NUMANode", True)]),
    ("Device", [("ID", 1, "string", False), ("health", 2, "string", False), ("topology", 3, "TopologyInfo", False)]),
    ("ListAndWatchResponse", [("devices", 1, "Device", True)]),
    ("ContainerPreferredAllocationRequest", [("available_deviceIDs", 1, "string", True),
                                             ("must_include_deviceIDs", 2, "string", True),
                                             ("allocation_size", 3, "int32", False)]),
    ("PreferredAllocationRequest", [("container_requests", 1, "ContainerPreferredAllocationRequest", True)]),
    ("ContainerPreferredAllocationResponse", [("deviceIDs", 1, "string", True)]),
    ("PreferredAllocationResponse", [("container_responses", 1, "ContainerPreferredAllocationResponse", True)]),
    ("ContainerAllocateRequest", [("devicesIDs", 1, "string", True)]),
    ("AllocateRequest", [("container_requests", 1, "ContainerAllocateRequest", True)]),
    ("Mount", [("container_path", 1, "string", False), ("host_path", 2, "string", False),
               ("read_only", 3, "bool", False)]),
    ("DeviceSpec", [("container_path", 1, "string", False), ("host_path", 2, "string", False),
                    ("permissions", 3, "string", False)]),
    ("ContainerAllocateResponse", [("envs", 1, "map", False), ("mounts", 2, "Mount", True),
                                   ("devices", 3, "DeviceSpec", True), ("annotations", 4, "map", False)]),
    ("AllocateResponse", [("container_responses", 1, "ContainerAllocateResponse", True)]),
    ("PreStartContainerRequest", [("devicesIDs", 1, "string", True)]),
    ("PreStartContainerResponse", []),
]

POD_RESOURCES_V1: list[tuple[str, list[tuple[str, int, str, bool]]]] = [
    ("NUMANode", [("ID", 1, "int64", False)]),
    ("TopologyInfo", [("nodes", 1, "NUMANode", True)]),
    ("ContainerDevices", [("resource_name", 1, "string", False), ("device_ids", 2, "string", True),
                          ("topology", 3, "TopologyInfo", False)]),
    ("ContainerMemory", [("memory_type", 1, "string", False), ("size", 2, "uint64", False),
                         ("topology", 3, "TopologyInfo", False)]),
    ("ContainerResources", [("name", 1, "string", False), ("devices", 2, "ContainerDevices", True),
                            ("cpu_ids", 3, "int64", True), ("memory", 4, "ContainerMemory", True)]),
    ("PodResources", [("name", 1, "string", False), ("namespace", 2, "string", False),
                      ("containers", 3, "ContainerResources", True)]),
    ("ListPodResourcesRequest", []),
    ("ListPodResourcesResponse", [("pod_resources", 1, "PodResources", True)]),
    ("AllocatableResourcesRequest", []),
    ("AllocatableResourcesResponse", [("devices", 1, "ContainerDevices", True), ("cpu_ids", 2, "int64", True),
                                      ("memory", 3, "ContainerMemory", True)]),
]

#: gRPC method paths: /<package>.<service>/<method>
DEVICE_PLUGIN_SERVICE = "v1beta1.DevicePlugin"
POD_RESOURCES_SERVICE = "v1.PodResourcesLister"


def _file(name: str, package: str, messages: list[tuple[str, list[tuple[str, int, str, bool]]]]
          ) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    for message_name, fields in messages:
        message = proto.message_type.add(name=message_name)
        for field_name, number, kind, repeated in fields:
            field = message.field.add(name=field_name, number=number, json_name=field_name)
            if kind == "map":
                entry_name = "".join(p.capitalize() for p in field_name.split("_")) + "Entry"
                entry = message.nested_type.add(name=entry_name)
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_OPTIONAL, json_name="key")
                entry.field.add(name="value", number=2, type=_F.TYPE_STRING, label=_OPTIONAL, json_name="value")
                field.type, field.label = _F.TYPE_MESSAGE, _REPEATED
                field.type_name = f".{package}.{message_name}.{entry_name}"
            elif kind in _TYPES:
                field.type, field.label = _TYPES[kind], _REPEATED if repeated else _OPTIONAL
            else:
                field.type, field.label = _F.TYPE_MESSAGE, _REPEATED if repeated else _OPTIONAL
                field.type_name = f".{package}.{kind}"
    return proto


class _Api:
    """One API's message classes by name (``api.Device``), from its own descriptor pool."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto):
        pool = descriptor_pool.DescriptorPool()
        pool.Add(file)
        self.package = file.package
        self._classes = {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{file.package}.{m.name}"))
                         for m in file.message_type}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._classes[name]
        except KeyError:
            raise AttributeError(f"{self.package} has no message {name}") from None


deviceplugin = _Api(_file("hilt/fabric/kubelet_deviceplugin_v1beta1.proto", "v1beta1", DEVICE_PLUGIN_V1BETA1))
podresources = _Api(_file("hilt/fabric/kubelet_podresources_v1.proto", "v1", POD_RESOURCES_V1))

#: (method, request message, response message, response is a stream)
DEVICE_PLUGIN_METHODS = {
    "GetDevicePluginOptions": ("Empty", "DevicePluginOptions", False),
    "ListAndWatch": ("Empty", "ListAndWatchResponse", True),
    "GetPreferredAllocation": ("PreferredAllocationRequest", "PreferredAllocationResponse", False),
    "Allocate": ("AllocateRequest", "AllocateResponse", False),
    "PreStartContainer": ("PreStartContainerRequest", "PreStartContainerResponse", False),
}
POD_RESOURCES_METHODS = {
    "List": ("ListPodResourcesRequest", "ListPodResourcesResponse", False),
    "GetAllocatableResources": ("AllocatableResourcesRequest", "AllocatableResourcesResponse", False),
}
