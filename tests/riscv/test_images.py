"""What the images carry, read back the way the guest and the kernel read it (no QEMU boot needed)."""

from __future__ import annotations

import gzip
import re
import subprocess
import tarfile

import pytest

from hilt.sim.riscv.build import BuildError, build_kernel, default_cache_dir
from hilt.sim.riscv.firmware import firmware_dtb
from hilt.sim.riscv.image import build_images, read_image


def _cpio_entries(data: bytes) -> dict[str, tuple[int, bytes]]:
    """newc cpio -> {name: (mode, data)}: the kernel's initramfs unpacker reads the same fields."""
    raw, pos, out = gzip.decompress(data), 0, {}
    while True:
        assert raw[pos:pos + 6] == b"070701", f"bad cpio magic at {pos}"
        fields = [int(raw[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        pos += 110
        name = raw[pos:pos + namesize - 1].decode()
        pos = (pos + namesize + 3) & ~3
        body = raw[pos:pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out = tmp_path_factory.mktemp("riscv-images")
    return build_images(out, authorized_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHiltTestKeyOnly test")


def test_images_are_real_kernel_and_initramfs_with_identity(images, tmp_path):
    built, host_pub = images
    good = next(i for i in built if i.name == "good")
    image = read_image(good.path, tmp_path / "good", expected_sha256=good.sha256)
    assert image.manifest["kernel"].endswith("-hilt-riscv")
    assert (tmp_path / "good" / "Image").read_bytes() == build_kernel(default_cache_dir()).read_bytes()
    entries = _cpio_entries((tmp_path / "good" / "initramfs.cpio.gz").read_bytes())
    assert b"IMAGE_ID=hilt-riscv-good-1\n" in entries["etc/os-release"][1]
    assert entries["dev/console"][0] >> 12 == 0o02  # a character device: init gets its console
    assert entries["usr/bin/sh"][1] == b"busybox" and entries["usr/bin/busybox"][1][:4] == b"\x7fELF"
    assert entries["usr/bin/bash"][1].startswith(b"#!/bin/sh")  # hilt's `bash -s` runs under busybox sh
    assert entries["root/.ssh/authorized_keys"][1].startswith(b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHilt")
    key = entries["etc/dropbear/dropbear_ed25519_host_key"][1]
    assert key[4:15] == b"ssh-ed25519" and key[-32:] in _pub_blob(host_pub)  # pinned key = image's key
    assert b"dropbear" in entries["init"][1]


def _pub_blob(openssh: str) -> bytes:
    import base64

    return base64.b64decode(openssh.split()[1])


def test_broken_image_init_exits(images, tmp_path):
    broken = next(i for i in images[0] if i.name == "broken")
    read_image(broken.path, tmp_path / "b")
    init = _cpio_entries((tmp_path / "b" / "initramfs.cpio.gz").read_bytes())["init"][1]
    assert b"exit 1" in init and b"dropbear" not in init


def test_tampered_download_is_refused(images, tmp_path):
    good = next(i for i in images[0] if i.name == "good")
    with pytest.raises(Exception, match="does not match the published"):
        read_image(good.path, tmp_path / "x", expected_sha256="0" * 64)
    with tarfile.open(good.path) as tar:
        assert sorted(tar.getnames()) == ["Image", "initramfs.cpio.gz", "manifest.json"]


def test_firmware_tree_is_qemu_virt_plus_the_named_nvlink_nodes(tmp_path):
    """QEMU virt's dumped DTB plus the /firmware nodes the image names, compiled and read back with dtc."""
    dtb = firmware_dtb(default_cache_dir() / "firmware", tmp_path / "fw.dtb", ["nvlink-0", "nvlink-2", "nvlink-3"],
                       serial="SIM-RV-node1")
    dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(dtb)], capture_output=True, text=True,
                         check=True).stdout
    assert "riscv-virtio" in dts and "virtio_mmio@" in dts  # QEMU's own tree is kept
    assert "nvlink-1" not in dts
    assert '\tserial-number = "SIM-RV-node1";' in dts  # the board's identity, in the root node
    for name in ("nvlink-0", "nvlink-2", "nvlink-3"):
        assert f'{name} {{\n\t\t\tcompatible = "nvidia,nvlink-fusion";' in dts


def test_firmware_splits_the_guest_ram_into_a_cpu_node_and_a_cpu_less_node_per_gpu(tmp_path):
    """The GPU memory a Fusion host exposes, as the device-tree NUMA binding says it (QEMU virt refuses CPU-less
    -numa nodes): memory nodes with numa-node-id, the CPUs on node 0, Grace's distances."""
    dtb = firmware_dtb(default_cache_dir() / "firmware", tmp_path / "fw.dtb", ["nvlink-0"], memory_mb=256,
                       gpu_memory_mb=[32, 32, 32, 32])
    dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(dtb)], capture_output=True, text=True,
                         check=True).stdout
    nodes = re.findall(r"memory@([0-9a-f]+) \{\n\t\tdevice_type = \"memory\";\n\t\treg = <([^>]*)>;\n"
                       r"\t\tnuma-node-id = <0x0?(\d)>;", dts)
    assert [(addr, int(node)) for addr, _, node in nodes] == [
        ("80000000", 0), ("88000000", 1), ("8a000000", 2), ("8c000000", 3), ("8e000000", 4)]
    assert nodes[0][1] == "0x00 0x80000000 0x00 0x8000000" and nodes[1][1] == "0x00 0x88000000 0x00 0x2000000"
    assert re.search(r"cpu@0 \{[^}]*numa-node-id = <0x00>;", dts)
    assert "numa-distance-map-v1" in dts
    # without GPU memory the firmware says nothing of NUMA: the guest has one node, as a host without Fusion
    plain = firmware_dtb(default_cache_dir() / "firmware", tmp_path / "plain.dtb", ["nvlink-0"], gpu_memory_mb=[])
    text = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(plain)], capture_output=True, text=True,
                          check=True).stdout
    assert "numa-node-id" not in text and text.count("memory@") == 1


def test_gpu_memory_that_leaves_the_cpus_too_little_is_refused(tmp_path):
    with pytest.raises(BuildError, match=r"do not fit in 256 MiB of guest RAM"):
        firmware_dtb(default_cache_dir() / "firmware", tmp_path / "fw.dtb", [], memory_mb=256,
                     gpu_memory_mb=[64, 64, 64])
