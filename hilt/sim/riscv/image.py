"""RISC-V sim images: a kernel, an initramfs (busybox + dropbear) and a manifest, in one tarball.

The initramfs is written here as a newc cpio (pure Python, so /dev/console and file modes need no root); it
carries the session's authorized key and the image's dropbear host key, so images are composed per session
(about a second) on top of the cached kernel and userland. The manifest says what the node's *firmware*
exposes in its device tree (``devicetree.nvlink``: the NVLink nodes; ``devicetree.gpu_memory_mb``: the GPU
memory handed to the OS, one CPU-less NUMA node each): the rig's test images carry it, so an image can ship a
firmware that lacks a node.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hilt.sim.riscv.build import BuildError, build_kernel, build_userland, kernel_release

ALL_NVLINK = ["nvlink-0", "nvlink-1", "nvlink-2", "nvlink-3"]
#: The coherent GPU memory the firmware exposes: a CPU-less NUMA node of 32 MiB per GPU (hilt.sim.riscv.firmware).
GPU_MEMORY_MB = [32, 32, 32, 32]
STANDARD_IMAGES: dict[str, dict[str, Any]] = {
    "good": {"boot": "ok", "devicetree": {"nvlink": ALL_NVLINK, "gpu_memory_mb": GPU_MEMORY_MB}},
    "broken": {"boot": "panic", "devicetree": {"nvlink": ALL_NVLINK, "gpu_memory_mb": GPU_MEMORY_MB}},
    "dt-missing": {"boot": "ok", "devicetree": {"nvlink": ["nvlink-0", "nvlink-2", "nvlink-3"],
                                                "gpu_memory_mb": GPU_MEMORY_MB}},
    # a firmware that does not hand the GPU memory to the OS: no memory-only NUMA node, everything else good
    "coherent-memory-missing": {"boot": "ok", "devicetree": {"nvlink": ALL_NVLINK, "gpu_memory_mb": []}},
}
#: busybox applets linked into /usr/bin (what init, the node probes and a person at the console use).
APPLETS = ("sh ash mount umount mkdir rmdir rm cat echo printf ls ln cp mv ip ifconfig route hostname uname "
           "base64 mktemp find sort dmesg sleep head tail grep sed awk cut tr wc ps kill poweroff reboot halt "
           "true false test [ [[ env id whoami date stat od hexdump xargs seq tee touch chmod dirname basename "
           "readlink realpath uptime free df sync mdev udhcpc nproc timeout which md5sum sha256sum").split()

INIT_OK = """#!/bin/sh
# hilt sim-riscv init ({image_id}): mounts, hostname, network (slirp: static 10.0.2.15), dropbear.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
name=$(sed -n 's/.*hilt.hostname=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
hostname "${{name:-riscv}}"
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
echo "hilt: {image_id} up on $(uname -r), boot id $(cat /proc/sys/kernel/random/boot_id)"
/usr/sbin/dropbear -s -g -p 22 -r /etc/dropbear/dropbear_ed25519_host_key -P /run/dropbear.pid
echo "hilt: dropbear started"
while :; do sleep 3600; done
"""

INIT_PANIC = """#!/bin/sh
# hilt sim-riscv init ({image_id}): the broken image. init exits, so the kernel panics.
mount -t proc proc /proc
echo "hilt: {image_id}: init cannot start userspace (this image is broken on purpose)"
exit 1
"""


@dataclass(frozen=True)
class RiscvImage:
    """A built image tarball and its manifest (the daemon serves ``path`` and checks ``sha256``)."""

    name: str
    path: Path
    sha256: str
    manifest: dict[str, Any]

    def identity(self) -> dict[str, Any]:
        return {"image_id": self.manifest["image_id"], "kernel": self.manifest["kernel"], "driver": None}


def _dropbear_key(key: Ed25519PrivateKey) -> bytes:
    """Dropbear's own ed25519 key file: string "ssh-ed25519", string (32-byte seed || 32-byte public)."""
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def sshstr(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    return sshstr(b"ssh-ed25519") + sshstr(seed + pub)


def new_host_key() -> tuple[bytes, str]:
    """A fresh host key: (dropbear key file bytes, "ssh-ed25519 AAAA..." to pin in the rig)."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return _dropbear_key(key), public.decode()


class Cpio:
    """A newc ("070701") archive writer, enough for an initramfs."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1
        self.seen: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        name = name.strip("/") or "."
        if name in self.seen:
            return
        self.seen.add(name)
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
        self.ino += 1
        self.buf.write(b"070701" + b"".join(f"{v:08x}".encode() for v in fields) + name.encode() + b"\0")
        self.buf.write(b"\0" * (-self.buf.tell() % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def dir(self, name: str, mode: int = 0o755) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts)):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755)
        self._entry(name, stat.S_IFDIR | mode)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.dir(str(Path(name).parent)) if "/" in name.strip("/") else None
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self.dir(str(Path(name).parent)) if "/" in name.strip("/") else None
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def tree(self, root: Path) -> None:
        """Add everything under ``root`` (docs left out), keeping modes and symlinks."""
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith("usr/share/"):
                continue
            if path.is_symlink():
                self.symlink(rel, str(path.readlink()))
            elif path.is_dir():
                self.dir(rel)
            else:
                self.file(rel, path.read_bytes(), stat.S_IMODE(path.stat().st_mode))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return gzip.compress(self.buf.getvalue(), compresslevel=6, mtime=0)


def build_initramfs(userland: Path, *, image_id: str, boot: str, host_key: bytes, authorized_key: str) -> bytes:
    """The gzipped initramfs: Debian's busybox + dropbear, our init, identity, keys."""
    c = Cpio()
    for d in ("dev", "proc", "sys", "run", "tmp", "root", "etc/dropbear", "usr/bin", "usr/sbin", "usr/lib"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
        c.symlink(link, target)
    c.tree(userland)
    for applet in APPLETS:
        c.symlink(f"usr/bin/{applet}", "busybox")
    # hilt runs its scripts with `bash -s`; busybox has no bash applet, so bash is its POSIX sh
    c.file("usr/bin/bash", b'#!/bin/sh\nexec /bin/sh "$@"\n', 0o755)
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    c.file("etc/group", b"root:x:0:\n")
    c.file("etc/shells", b"/bin/sh\n/usr/bin/sh\n")
    c.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nshadow: files\n")
    c.file("etc/os-release", (f'NAME="hilt sim RISC-V"\nID=hilt-riscv\nIMAGE_ID={image_id}\nBUILD_ID={image_id}\n'
                              f'PRETTY_NAME="hilt sim RISC-V ({image_id})"\n').encode())
    c.file("etc/dropbear/dropbear_ed25519_host_key", host_key, 0o600)
    c.dir("root/.ssh", 0o700)
    c.file("root/.ssh/authorized_keys", (authorized_key.strip() + "\n").encode(), 0o600)
    c.file("init", (INIT_PANIC if boot == "panic" else INIT_OK).format(image_id=image_id).encode(), 0o755)
    return c.finish()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def build_images(out_dir: Path, *, authorized_key: str, names: list[str] | None = None,
                 cache_dir: Path | None = None) -> tuple[list[RiscvImage], str]:
    """Build the standard images into ``out_dir``; returns them and the host key (one per session) to pin."""
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel = build_kernel(cache_dir)
    userland = build_userland(cache_dir)
    release = kernel_release(kernel)
    host_key, host_pub = new_host_key()
    images = []
    for name in names or list(STANDARD_IMAGES):
        if name not in STANDARD_IMAGES:
            raise BuildError(f"unknown riscv image {name!r}; images: {', '.join(STANDARD_IMAGES)}")
        spec = STANDARD_IMAGES[name]
        image_id = f"hilt-riscv-{name}-1"
        manifest = {"name": name, "image_id": image_id, "kernel": release, "arch": "riscv64",
                    "profile": "sim-riscv-nvlink", **spec}
        initrd = build_initramfs(userland, image_id=image_id, boot=spec["boot"], host_key=host_key,
                                 authorized_key=authorized_key)
        path = out_dir / f"riscv-{name}.tar"
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
            _add(tar, "Image", kernel.read_bytes())
            _add(tar, "initramfs.cpio.gz", initrd)
        images.append(RiscvImage(name, path, hashlib.sha256(path.read_bytes()).hexdigest(), manifest))
    return images, host_pub


def read_image(path: Path, dest: Path, expected_sha256: str | None = None) -> RiscvImage:
    """Unpack a downloaded image into ``dest`` (kernel, initramfs, manifest), checking its sha256 first."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise BuildError(f"{path}: sha256 {digest} does not match the published {expected_sha256}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        missing = {"manifest.json", "Image", "initramfs.cpio.gz"} - names
        if missing:
            raise BuildError(f"{path}: not a riscv sim image, missing {sorted(missing)}")
        for member in ("manifest.json", "Image", "initramfs.cpio.gz"):
            (dest / member).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    manifest = json.loads((dest / "manifest.json").read_text())
    return RiscvImage(manifest["name"], path, digest, manifest)
