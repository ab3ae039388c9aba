"""hilt's wire definitions put the published field numbers and types on the wire, byte for byte.

Each expected byte string is written from the api.proto field numbers by hand (tag = number << 3 | wire type:
0 varint, 2 length-delimited), so a wrong number or type in hilt.fabric.kubelet_api changes the bytes and fails here.
"""

from __future__ import annotations

from hilt.fabric.kubelet_api import deviceplugin as dp
from hilt.fabric.kubelet_api import podresources as pr


def _s(tag: int, text: str) -> bytes:
    data = text.encode()
    return bytes([tag, len(data)]) + data


def test_device_with_health_and_numa_topology():
    device = dp.Device(ID="GPU-1", health="Healthy", topology=dp.TopologyInfo(nodes=[dp.NUMANode(ID=1)]))
    numa = b"\x0a\x02\x08\x01"  # TopologyInfo.nodes = 1 (message) holding NUMANode.ID = 1 (varint)
    assert device.SerializeToString() == _s(0x0A, "GPU-1") + _s(0x12, "Healthy") + b"\x1a\x04" + numa
    listed = dp.ListAndWatchResponse(devices=[device]).SerializeToString()
    assert listed[:2] == bytes([0x0A, len(device.SerializeToString())])  # devices = 1


def test_options_and_preferred_allocation_fields():
    assert dp.DevicePluginOptions(get_preferred_allocation_available=True).SerializeToString() == b"\x10\x01"
    assert dp.DevicePluginOptions(pre_start_required=True).SerializeToString() == b"\x08\x01"
    ask = dp.ContainerPreferredAllocationRequest(available_deviceIDs=["a", "b"], must_include_deviceIDs=["b"],
                                                 allocation_size=2)
    assert ask.SerializeToString() == _s(0x0A, "a") + _s(0x0A, "b") + _s(0x12, "b") + b"\x18\x02"
    wrapped = dp.PreferredAllocationRequest(container_requests=[ask]).SerializeToString()
    assert wrapped[0] == 0x0A
    answer = dp.PreferredAllocationResponse(container_responses=[dp.ContainerPreferredAllocationResponse(
        deviceIDs=["b", "a"])])
    assert answer.SerializeToString() == b"\x0a\x06" + _s(0x0A, "b") + _s(0x0A, "a")


def test_allocate_response_maps_and_specs():
    response = dp.ContainerAllocateResponse(envs={"K": "V"}, devices=[dp.DeviceSpec(host_path="/dev/nvidia0")])
    data = response.SerializeToString()
    assert data.startswith(b"\x0a\x06" + _s(0x0A, "K") + _s(0x12, "V"))  # envs = 1: map entry key 1, value 2
    assert _s(0x12, "/dev/nvidia0") in data and data[8] == 0x1A  # devices = 3, DeviceSpec.host_path = 2


def test_pod_resources_allocatable():
    devices = pr.ContainerDevices(resource_name="nvidia.com/gpu", device_ids=["GPU-1"],
                                  topology=pr.TopologyInfo(nodes=[pr.NUMANode(ID=0), pr.NUMANode(ID=1)]))
    expected = (_s(0x0A, "nvidia.com/gpu") + _s(0x12, "GPU-1")
                + b"\x1a\x06" + b"\x0a\x00" + b"\x0a\x02\x08\x01")  # NUMA 0 is the default: an empty message
    assert devices.SerializeToString() == expected
    response = pr.AllocatableResourcesResponse(devices=[devices], cpu_ids=[3, 4], memory=[pr.ContainerMemory(
        memory_type="memory", size=5)])
    data = response.SerializeToString()
    assert data.startswith(bytes([0x0A, len(expected)]) + expected)
    assert b"\x12\x02\x03\x04" in data  # cpu_ids = 2, packed int64
    assert b"\x1a\x0a" + _s(0x0A, "memory") + b"\x10\x05" in data  # memory = 3: memory_type 1, size 2


def test_unknown_fields_from_a_newer_peer_are_kept_and_ignored():
    newer = dp.Device(ID="GPU-1").SerializeToString() + b"\x22\x03abc"  # a field 4 this API does not declare
    parsed = dp.Device.FromString(newer)
    assert parsed.ID == "GPU-1" and parsed.SerializeToString() == newer
