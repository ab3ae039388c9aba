"""What the images carry, read back the way the guest and the kernel read it (no QEMU boot needed)."""

from __future__ import annotations

import gzip
import subprocess
import tarfile

import pytest

from hilt.sim.riscv.build import build_kernel, default_cache_dir
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
