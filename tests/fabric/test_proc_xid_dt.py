import pytest

from hilt.fabric import ParseError
from hilt.fabric.devicetree import encode_property, parse_devicetree
from hilt.fabric.procinfo import parse_driver_version, parse_gpu_information
from hilt.fabric.xid import CRITICAL_XIDS, check_xids, parse_xids


def test_information_real_tabs(corpus):
    g = parse_gpu_information(corpus("proc/proc-driver-nvidia-gpus-information-a10g-real-tabs-fixture.txt"))
    assert (g.model, g.bus_location, g.irq, g.device_minor) == ("NVIDIA A10G", "0000:00:1e.0", 42, 3)
    assert g.excluded is False and g.firmware is None


def test_information_spaces_and_gpu_firmware(corpus):
    g = parse_gpu_information(corpus("proc/proc-driver-nvidia-gpus-information-h100-hbm3-gpu-firmware.txt"))
    assert g.firmware == "535.129.03" and g.uuid == "GPU-9221d5d1-b60b-a624-bf14-0a1819cfda3b"


def test_information_old_blacklisted_key():
    g = parse_gpu_information("Model:\t\t Tesla V100-SXM2-16GB\nIRQ:\t\t 85\nBlacklisted:\t Yes\n")
    assert g.excluded is True and g.model == "Tesla V100-SXM2-16GB"


def test_information_garbage_raises():
    with pytest.raises(ParseError) as err:
        parse_gpu_information("Model:\t X\nthis is not a key value line\n")
    assert err.value.line_no == 2


def test_driver_version_from_proc_and_sys():
    proc = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Tue Oct 10 21:45:56 UTC 2023\nGCC version: 11\n"
    assert parse_driver_version(proc) == "535.129.03"
    assert parse_driver_version("550.54.15\n") == "550.54.15"
    with pytest.raises(ParseError):
        parse_driver_version("cat: /proc/driver/nvidia/version: No such file or directory\n")


def test_xids_critical_and_not():
    log = (
        "[  10.1] eth0: link up\n"
        "[ 312.5] NVRM: Xid (PCI:0000:18:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n"
        "Mar 01 10:00:00 host kernel: NVRM: Xid (PCI:0000:3b:00): 13, Graphics SM Warp Exception\n"
        "[ 313.5] NVRM: Xid (PCI:0000:18:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n"
    )
    events = parse_xids(log)
    assert [(e.pci_bus_id, e.xid, e.critical) for e in events] == [
        ("0000:18:00", 79, True),
        ("0000:3b:00", 13, False),
        ("0000:18:00", 79, True),
    ]
    assert check_xids(events) == [
        "Xid 79 on PCI:0000:18:00 (2x, line 2): pid='<unknown>', name=<unknown>, GPU has fallen off the bus."
    ]
    assert {48, 79, 119, 120} <= CRITICAL_XIDS and 13 not in CRITICAL_XIDS


def test_devicetree_strings_lists_cells_and_booleans():
    files = {
        "compatible": b"vendor,board\0riscv-virtio\0",
        "firmware/name": b"firmware\0",
        "firmware/nvlink-0/compatible": b"nvidia,nvlink-fusion\0",
        "firmware/nvlink-0/reg": bytes.fromhex("00000000600000000000000000010000"),
        "firmware/nvlink-0/dma-coherent": b"",
    }
    dt = parse_devicetree(files)
    assert dt.node("/").compatible == ["vendor,board", "riscv-virtio"]
    node = dt.children("firmware")[0]
    assert node.name == "nvlink-0" and node.compatible == ["nvidia,nvlink-fusion"]
    assert node.properties["reg"] == [0, 0x60000000, 0, 0x10000]
    assert node.properties["dma-coherent"] is True
    for value in ("x", ["a", "b"], [1, 2], True):
        assert parse_devicetree({"n/p": encode_property(value)}).node("n").properties["p"] == value


def test_devicetree_rejects_escaping_paths():
    with pytest.raises(ParseError):
        parse_devicetree({"firmware/../etc/passwd": b"x\0"})
