"""Sim images: tarballs whose contents decide what a booted sim node shows.

An image is ``manifest.json`` plus a ``root/`` overlay. The overlay holds only the paths a real GPU node
differs on (os-release, /proc/driver, /sys/module, /sys/firmware/devicetree, /sys/class/nvlink, the tools in
/usr/local/bin, /opt/hilt-sim); :mod:`hilt.sim.nodeinit` mounts them over the host's in the node's own mount
namespace. Tarballs are written deterministically (sorted, mtime 0) so that their sha256 is a stable
identity, and the standard set is cached by the hash of what goes in.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilt.errors import ConfigError

BUILDER_VERSION = "1"
DEFAULT_KERNEL = "6.1.0-hilt-sim-amd64"
DEFAULT_DRIVER = "550.54.15"
DEFAULT_PROFILE = "sim-4gpu"
BOOT_MODES = ("ok", "never", "panic")

#: The fields of manifest.json and their defaults; ``build_image`` overrides take these names.
MANIFEST_DEFAULTS: dict[str, Any] = {
    "image_id": None,  # default: hilt-sim-<name>
    "kernel": DEFAULT_KERNEL,
    "driver": DEFAULT_DRIVER,
    "identity_driver": None,  # the driver the image *claims* (rigs.yaml identity); default: driver
    "profile": DEFAULT_PROFILE,
    "link_rate_mbit": 1000,
    "boot": "ok",
    "boot_delay_s": 0.0,
    "fabric": {},
    "nccl": {},
}

#: The standard set, built at sim start. Fabric spec keys are read by hilt.sim.fabric_view.
STANDARD_IMAGES: dict[str, dict[str, Any]] = {
    "good": {"nccl": {"nccl_busbw_gbps": 180.0, "gpus": 4}},
    "regressed": {"link_rate_mbit": 500, "nccl": {"nccl_busbw_gbps": 110.0, "gpus": 4}},
    "broken": {"boot": "never"},
    "links-down": {"fabric": {"links_down": [[0, 1]]}, "nccl": {"nccl_busbw_gbps": 150.0, "gpus": 4}},
    "wrong-topo": {"fabric": {"topo_overrides": {"GPU0-GPU1": "SYS"}}, "nccl": {"nccl_busbw_gbps": 180.0, "gpus": 4}},
    # a device tree exists only on the RISC-V profile, so this image is for nodes of that profile
    "dt-missing": {"profile": "sim-riscv-nvlink", "fabric": {"dt_missing": ["nvlink-1"]},
                   "nccl": {"nccl_busbw_gbps": 180.0, "gpus": 4}},
    # the image is what it says (535), but the platform profile wants 550: only the NVML check fails
    "wrong-driver": {"driver": "535.104.05",
                     "nccl": {"nccl_busbw_gbps": 180.0, "gpus": 4}},
}


@dataclass(frozen=True)
class Image:
    """A built image file and its manifest."""

    name: str
    path: Path
    sha256: str
    manifest: dict[str, Any]

    def identity(self) -> dict[str, str]:
        """What rigs.yaml expects a node booted with this image to show."""
        m = self.manifest
        return {
            "image_id": m["image_id"],
            "kernel": m["kernel"],
            "driver": m.get("identity_driver") or m["driver"],
        }


def make_manifest(name: str, **overrides: Any) -> dict[str, Any]:
    """The full manifest of image ``name``; unknown override names are an error that lists the valid ones."""
    unknown = sorted(set(overrides) - set(MANIFEST_DEFAULTS))
    if unknown:
        raise ConfigError(f"sim image {name!r}: unknown field(s) {unknown}; valid: {sorted(MANIFEST_DEFAULTS)}")
    manifest = {**json.loads(json.dumps(MANIFEST_DEFAULTS)), **overrides, "name": name}
    manifest["image_id"] = manifest["image_id"] or f"hilt-sim-{name}"
    if manifest["boot"] not in BOOT_MODES:
        raise ConfigError(f"sim image {name!r}: boot={manifest['boot']!r}; valid: {list(BOOT_MODES)}")
    if not isinstance(manifest["link_rate_mbit"], int | float) or manifest["link_rate_mbit"] <= 0:
        raise ConfigError(f"sim image {name!r}: link_rate_mbit must be a positive number")
    return manifest


def _optional_writer(module: str, func: str) -> Callable[..., Any] | None:
    """A view writer of another module, or None while that module does not exist yet."""
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError):
        return None


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


_NVIDIA_SMI = """#!/bin/sh
# Simulated nvidia-smi: prints the captured output this image ships for the given arguments.
d=/opt/hilt-sim/nvidia-smi
key=$(printf '%s_' "$@" | tr -c 'A-Za-z0-9_.=-' '_')
[ $# -eq 0 ] && key=default
if [ -f "$d/$key.txt" ]; then cat "$d/$key.txt"; exit 0; fi
echo "nvidia-smi (hilt sim image): no output recorded for arguments: $*" >&2
exit 2
"""

_DMESG = """#!/bin/sh
# Simulated dmesg: the kernel log this image's boot produced.
cat /opt/hilt-sim/dmesg.txt
"""


def _smi_default(manifest: dict[str, Any]) -> str:
    drv = manifest["driver"]
    return (
        "+-----------------------------------------------------------------------------------------+\n"
        f"| NVIDIA-SMI {drv:<18} Driver Version: {drv:<18} CUDA Version: 12.4     |\n"
        "|-----------------------------------------+------------------------+----------------------+\n"
        "| (hilt simulated node: no real GPU)                                                      |\n"
        "+-----------------------------------------+------------------------+----------------------+\n"
    )


def write_base_root(root: Path, manifest: dict[str, Any]) -> None:
    """The overlay every image has; the fabric and nccl views are written on top of it."""
    image_id, kernel, driver = manifest["image_id"], manifest["kernel"], manifest["driver"]
    _write(
        root / "etc/os-release",
        'PRETTY_NAME="hilt simulated GPU node"\nNAME="hilt-sim"\nID=hilt-sim\nID_LIKE=debian\n'
        f'VERSION_ID="{manifest["name"]}"\nBUILD_ID="{image_id}"\nIMAGE_ID="{image_id}"\n',
    )
    _write(
        root / "proc/driver/nvidia/version",
        f"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {driver}  Release Build  "
        "(hilt-sim@builder)  Tue Mar  5 22:15:33 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
    )
    _write(root / "sys/module/nvidia/version", f"{driver}\n")
    (root / "sys/firmware/devicetree/base").mkdir(parents=True, exist_ok=True)
    _write(root / "usr/local/bin/nvidia-smi", _NVIDIA_SMI, 0o755)
    _write(root / "usr/local/bin/dmesg", _DMESG, 0o755)
    _write(root / "opt/hilt-sim/nvidia-smi/default.txt", _smi_default(manifest))
    _write(
        root / "opt/hilt-sim/dmesg.txt",
        f"[    0.000000] Linux version {kernel} (hilt-sim@builder)\n"
        f"[    4.210000] nvidia: loading out-of-tree module taints kernel.\n"
        f"[    4.330000] NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  {driver}\n",
    )
    (root / "opt/hilt-sim/python").mkdir(parents=True, exist_ok=True)
    _write(root / "opt/hilt-sim/manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _populate(root: Path, manifest: dict[str, Any]) -> None:
    write_base_root(root, manifest)
    fabric = _optional_writer("hilt.sim.fabric_view", "write_fabric_view")
    load_profile = _optional_writer("hilt.fabric.profile", "load_profile")
    if fabric is not None and load_profile is not None:
        fabric(root, load_profile(manifest["profile"]), {"driver": manifest["driver"], **manifest["fabric"]})
    nccl = _optional_writer("hilt.sim.nccl_tests_view", "write_nccl_tests")
    if nccl is not None and manifest["nccl"]:
        nccl(root, manifest["nccl"])


def _tar_deterministic(src: Path, out: Path) -> None:
    """A tarball whose bytes depend only on the file contents (sorted names, mtime 0, owner root)."""
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted([src, *src.rglob("*")]):
            rel = path.relative_to(src).as_posix() or "."
            info = tar.gettarinfo(str(path), arcname=rel)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isfile():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    tmp.replace(out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _module_digest(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return "absent"
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


def _profile_digest(name: str) -> str:
    path = Path(__file__).resolve().parents[1] / "profiles" / f"{name}.yaml"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "absent"


def _content_key(manifest: dict[str, Any]) -> str:
    parts = [
        BUILDER_VERSION,
        json.dumps(manifest, sort_keys=True),
        hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        _module_digest("hilt.sim.fabric_view"),
        _module_digest("hilt.fabric.devicetree"),
        _profile_digest(manifest["profile"]),
        _module_digest("hilt.sim.nccl_tests_view"),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def build_image(name: str, out_dir: Path, cache_dir: Path | None = None, **overrides: Any) -> Path:
    """Build image ``name`` (manifest fields from ``overrides``) into ``out_dir/<name>.tar``.

    With ``cache_dir``, an image whose inputs did not change is copied from the cache instead of rebuilt.
    """
    manifest = make_manifest(name, **overrides)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name}.tar"
    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / _content_key(manifest) / f"{name}.tar"
        if cached.is_file():
            shutil.copyfile(cached, out)
            return out
    with tempfile.TemporaryDirectory(prefix="hilt-image-") as tmp:
        stage = Path(tmp) / "stage"
        (stage / "root").mkdir(parents=True)
        _write(stage / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _populate(stage / "root", manifest)
        _tar_deterministic(stage, out)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, cached)
    return out


def build_standard_images(out_dir: Path, cache_dir: Path | None = None, names: list[str] | None = None,
                          profile: str = DEFAULT_PROFILE) -> list[Path]:
    """The standard set (good, regressed, broken, ...) or the named subset of it, for nodes of ``profile``.

    An image that names its own profile (dt-missing) keeps it.
    """
    wanted = names or list(STANDARD_IMAGES)
    unknown = [n for n in wanted if n not in STANDARD_IMAGES]
    if unknown:
        raise ConfigError(f"unknown sim image(s) {unknown}; standard images: {list(STANDARD_IMAGES)}")
    return [build_image(n, out_dir, cache_dir=cache_dir, **{"profile": profile, **STANDARD_IMAGES[n]})
            for n in wanted]


def read_image(path: Path, expected_sha256: str | None = None) -> Image:
    """The manifest of an image file, after checking its sha256 when one is expected."""
    path = Path(path)
    sha = _sha256(path)
    if expected_sha256 and sha != expected_sha256:
        raise ConfigError(f"sim image {path}: sha256 is {sha}, expected {expected_sha256}")
    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            manifest = json.load(io.TextIOWrapper(member, encoding="utf-8"))
    except (tarfile.TarError, KeyError, json.JSONDecodeError, OSError) as exc:
        raise ConfigError(f"{path} is not a hilt sim image (tarball with manifest.json): {exc}") from None
    manifest = {**MANIFEST_DEFAULTS, **manifest}
    return Image(name=manifest.get("name", path.stem), path=path, sha256=sha, manifest=manifest)


def unpack_root(image: Image, dest: Path) -> Path:
    """Unpack the image's ``root/`` overlay into ``dest`` (replaced) and return it."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(image.path) as tar:
        members = [m for m in tar.getmembers() if m.name == "root" or m.name.startswith("root/")]
        for m in members:
            m.name = m.name[len("root/"):] if m.name != "root" else "."
        tar.extractall(dest, members=members, filter="data")
    os.chmod(dest, 0o755)
    return dest
