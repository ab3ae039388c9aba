"""Sim images: tarballs whose contents decide what a booted sim node shows.

An image is ``manifest.json`` plus a ``root/`` overlay. The overlay holds only the paths a real GPU node
differs on (os-release, /proc/driver, /sys/module, /sys/firmware/devicetree, /sys/class/nvlink, the tools in
/usr/local/bin, /opt/hilt-sim); :mod:`hilt.sim.nodeinit` mounts them over the host's in the node's own mount
namespace. What depends on the hardware (topology, NVLink, GPU count, nccl-tests output at the bandwidth the
image declares for that platform) is in ``views/<profile>/``, one per profile of the rig: a node unpacks the
view of its own profile over ``root/``, as one real image shows an H100 node's fabric on an H100 node and an
A100 node's on an A100 node. Tarballs are written deterministically (sorted, mtime 0) so that their sha256 is a stable
identity, and the standard set is cached by the hash of what goes in.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hilt.errors import ConfigError
from hilt.profiles.model import FirmwareSpec, load_profile
from hilt.sim.dcgm_view import write_dcgmi, write_nvbandwidth
from hilt.sim.fabric_view import INFOROM, VBIOS, write_fabric_view
from hilt.sim.fusion_view import FABRIC_TRAINING, FusionLayout, fusion_spec, gpu_uuid, platform_of, write_fusion_view
from hilt.sim.k8s_view import kubernetes_spec, write_k8s_view
from hilt.sim.nccl_tests_view import write_nccl_tests
from hilt.sim.safe_tar import extract_inside
from hilt.sim.trust_view import trust_spec, write_device_nodes, write_trust_root

BUILDER_VERSION = "3"
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
    "profile": DEFAULT_PROFILE,  # the view a node of an unlisted profile would get (and the first built)
    "profiles": None,  # every profile the image has a view for; default: [profile]
    "link_rate_mbit": 1000,
    "boot": "ok",
    "boot_delay_s": 0.0,
    "fabric": {},
    "nccl": {},
    "dcgm": {},  # hilt.sim.dcgm_view: dcgmi's declared results ({} ships no dcgmi)
    "nvbandwidth": {},  # hilt.sim.dcgm_view: nvbandwidth's declared bandwidths ({} ships no nvbandwidth)
    "trust": {},  # hilt.sim.trust_view: Secure Boot, lockdown, taint, module signatures ({}: a good node's)
    "fusion": {},  # hilt.sim.fusion_view: C2C links, coherent-memory NUMA nodes, fabric/IMEX faults ({}: good)
    "compatible_firmware": {},  # the firmware the image's identity declares compatible ({}: none declared)
    "kubernetes": {},  # hilt.sim.k8s_view: the device plugin's, kubelet's and GFD's view ({}: a right one)
}

#: DCGM and nvbandwidth as the good image ships them; the images below that do not name them ship the same.
_DCGM_OK: dict[str, Any] = {"version": "4.4.2"}
_NVBANDWIDTH_OK: dict[str, Any] = {"d2d_gbps": 150.0, "h2d_gbps": 55.0, "d2h_gbps": 55.0}

#: The standard set, built at sim start. Fabric spec keys are read by hilt.sim.fabric_view; ``nccl`` by
#: hilt.sim.nccl_tests_view (GPU count and name come from each view's profile; ``busbw_by_profile`` declares
#: another peak for a profile).
STANDARD_IMAGES: dict[str, dict[str, Any]] = {
    "good": {"nccl": {"nccl_busbw_gbps": 180.0}},
    "regressed": {"link_rate_mbit": 500, "nccl": {"nccl_busbw_gbps": 110.0}},
    "broken": {"boot": "never"},
    "links-down": {"fabric": {"links_down": [[0, 1]]}, "nccl": {"nccl_busbw_gbps": 150.0}},
    "wrong-topo": {"fabric": {"topo_overrides": {"GPU0-GPU1": "SYS"}}, "nccl": {"nccl_busbw_gbps": 180.0}},
    # a device tree exists only on the RISC-V profile: on nodes of other profiles this image is good
    "dt-missing": {"fabric": {"dt_missing": ["nvlink-1"]}, "nccl": {"nccl_busbw_gbps": 180.0}},
    # the image is what it says (535), but the platform profile wants 550: only the NVML check fails
    "wrong-driver": {"driver": "535.104.05", "nccl": {"nccl_busbw_gbps": 180.0}},
    # DCGM's memory test fails on GPU 1 (a bad HBM stack): only test_dcgm fails
    "dcgm-memory-fail": {"nccl": {"nccl_busbw_gbps": 180.0},
                         "dcgm": {**_DCGM_OK, "fail": {"memory": {1: "GPU 1 had a DBE (double-bit ECC error) "
                                                                     "during the memory test"}}}},
    # GPU-to-GPU copies at half speed (e.g. a P2P/IOMMU setting gone wrong): the nvbandwidth gate fails
    "slow-copy": {"nccl": {"nccl_busbw_gbps": 180.0}, "nvbandwidth": {**_NVBANDWIDTH_OK, "d2d_gbps": 75.0}},
    # Trust (docs/trust.md), one check each. The OS boots with Secure Boot off while the BMC reports it on
    # (lockdown and sig_enforce stay on, as with lockdown=integrity module.sig_enforce=1: only test_secure_boot fails):
    "secureboot-off": {"nccl": {"nccl_busbw_gbps": 180.0}, "trust": {"secure_boot": False}},
    # nvidia_uvm ships unsigned. It loads on first CUDA use, not at boot, so the kernel is not tainted E
    # yet (and sig_enforce would refuse it then): only test_module_signatures fails, before any job does.
    "unsigned-module": {"nccl": {"nccl_busbw_gbps": 180.0}, "trust": {"unsigned": ["nvidia_uvm"]}},
    # GPU 2 carries an older VBIOS (e.g. an RMA replacement never flashed): only test_firmware_matrix fails
    "firmware-mismatch": {"nccl": {"nccl_busbw_gbps": 180.0}, "fabric": {"vbios_by_gpu": {"2": "96.00.74.00.1C"}}},
    # What the kubelet believes (docs/kubernetes.md), one check each. The device plugin advertises one GPU fewer
    # than the node has (e.g. a plugin started before the driver saw every GPU): only test_kubernetes' device check
    "plugin-missing-gpu": {"nccl": {"nccl_busbw_gbps": 180.0}, "kubernetes": {"plugin_missing": 1}},
    # the preferred allocation takes GPUs across NVLink groups: fails only where a node has more than one group
    "plugin-cross-group": {"nccl": {"nccl_busbw_gbps": 180.0}, "kubernetes": {"preferred": "cross-group"}},
    # GFD labels another fabric clique than the GPUs show (a stale label from another partition)
    "gfd-wrong-clique": {"nccl": {"nccl_busbw_gbps": 180.0}, "kubernetes": {"gfd_clique": "wrong"}},
    # NVLink Fusion (hilt.sim.fusion_view; on Grace nodes only, elsewhere these images are good), one check each.
    # GPU 0's C2C link 3 trained down: only test_c2c fails
    "c2c-link-down": {"nccl": {"nccl_busbw_gbps": 180.0}, "fusion": {"c2c_links_down": [[0, 3]]}},
    # host copies over C2C at half rate (links at reduced width, or ATS translation thrashing): only the C2C
    # copy probe's gate fails
    "c2c-slow": {"nccl": {"nccl_busbw_gbps": 180.0}, "nvbandwidth": {**_NVBANDWIDTH_OK, "c2c_scale": 0.5}},
    # the driver did not online GPU 0's memory: its NUMA node is absent, only test_coherent_memory fails
    "coherent-memory-missing": {"nccl": {"nccl_busbw_gbps": 180.0}, "fusion": {"numa_missing": [0]}},
    # the domain faults sit on the tray with index 1 (the rig's second node of the profile; needs 2 trays):
    # its GPU 2 still training ("In Progress", the rest N/A), only test_nvlink_domain fails
    "fabric-training": {"nccl": {"nccl_busbw_gbps": 180.0},
                        "fusion": {"by_tray": {"1": {"fabric_by_gpu": {"2": FABRIC_TRAINING}}}}},
    # tray 1 cabled into another NVLink partition: clique 32767 where the others show 32766
    "clique-split": {"nccl": {"nccl_busbw_gbps": 180.0}, "fusion": {"by_tray": {"1": {"clique_id": 32767}}}},
    # IMEX node #1 UNAVAILABLE (its daemon never joined): Domain State DEGRADED on every node
    "imex-node-down": {"nccl": {"nccl_busbw_gbps": 180.0}, "fusion": {"imex_down": [1]}},
}
#: What every bootable standard image's driver build declares compatible (its identity's firmware matrix).
_COMPATIBLE_FIRMWARE: dict[str, Any] = {"vbios": [VBIOS], "inforom": [INFOROM]}
for _spec in STANDARD_IMAGES.values():
    if _spec.get("boot") != "never":
        _spec.setdefault("dcgm", dict(_DCGM_OK))
        _spec.setdefault("nvbandwidth", dict(_NVBANDWIDTH_OK))
        _spec.setdefault("compatible_firmware", dict(_COMPATIBLE_FIRMWARE))


@dataclass(frozen=True)
class Image:
    """A built image file and its manifest."""

    name: str
    path: Path
    sha256: str
    manifest: dict[str, Any]

    def identity(self) -> dict[str, Any]:
        """What rigs.yaml expects a node booted with this image to show (and the firmware it declares compatible)."""
        m = self.manifest
        identity: dict[str, Any] = {
            "image_id": m["image_id"],
            "kernel": m["kernel"],
            "driver": m.get("identity_driver") or m["driver"],
        }
        if m.get("compatible_firmware"):
            identity["firmware"] = m["compatible_firmware"]
        return identity


def make_manifest(name: str, **overrides: Any) -> dict[str, Any]:
    """The full manifest of image ``name``; unknown override names are an error that lists the valid ones."""
    unknown = sorted(set(overrides) - set(MANIFEST_DEFAULTS))
    if unknown:
        raise ConfigError(f"sim image {name!r}: unknown field(s) {unknown}; valid: {sorted(MANIFEST_DEFAULTS)}")
    manifest = {**json.loads(json.dumps(MANIFEST_DEFAULTS)), **overrides, "name": name}
    manifest["image_id"] = manifest["image_id"] or f"hilt-sim-{name}"
    profiles = manifest["profiles"] or [manifest["profile"]]
    if not isinstance(profiles, list) or not all(isinstance(p, str) and p for p in profiles):
        raise ConfigError(f"sim image {name!r}: profiles must be a list of profile names, got {profiles!r}")
    manifest["profiles"] = list(dict.fromkeys(profiles))
    if manifest["boot"] not in BOOT_MODES:
        raise ConfigError(f"sim image {name!r}: boot={manifest['boot']!r}; valid: {list(BOOT_MODES)}")
    if not isinstance(manifest["link_rate_mbit"], int | float) or manifest["link_rate_mbit"] <= 0:
        raise ConfigError(f"sim image {name!r}: link_rate_mbit must be a positive number")
    try:
        FirmwareSpec.model_validate(manifest["compatible_firmware"] or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"sim image {name!r}: compatible_firmware.{where}: {first['msg']} "
                          f"(valid: {', '.join(FirmwareSpec.model_fields)}, each a list of versions)") from None
    try:
        trust_spec(manifest["trust"])
        fusion_spec(manifest["fusion"])
        kubernetes_spec(manifest["kubernetes"])
    except ValueError as exc:
        raise ConfigError(f"sim image {name!r}: {exc}") from None
    return manifest


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
    write_trust_root(root, manifest)
    _write(root / "opt/hilt-sim/manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def nccl_spec_for(manifest: dict[str, Any], profile: Any) -> dict[str, Any]:
    """The nccl-tests view of this image on a node of ``profile``: its GPUs, at the bandwidth the image declares."""
    spec = {k: v for k, v in manifest["nccl"].items() if k != "busbw_by_profile"}
    declared = (manifest["nccl"].get("busbw_by_profile") or {}).get(profile.name)
    if declared is not None:
        spec["nccl_busbw_gbps"] = declared
    spec.setdefault("gpus", profile.gpu_count)
    if profile.gpu_name:
        spec.setdefault("gpu_name", profile.gpu_name)
    return spec


def _populate(stage: Path, manifest: dict[str, Any]) -> None:
    write_base_root(stage / "root", manifest)
    for name in manifest["profiles"]:
        profile = load_profile(name)
        view = stage / "views" / name
        view.mkdir(parents=True, exist_ok=True)
        fabric = {"driver": manifest["driver"], **manifest["fabric"]}
        layout = FusionLayout(profile, manifest["fusion"], manifest["driver"])
        if layout.platform is not None:  # a Grace node: its GPUs' own PCI addresses, and its own -q
            fabric.setdefault("buses", list(layout.platform.buses))
            fabric.setdefault("fusion_query", True)
        if layout.has_numa:  # GPU memory as NUMA nodes: topo -m names each GPU's (GPU NUMA ID)
            fabric.setdefault("topo_numa", layout.topo_numa())
        write_fabric_view(view, profile, fabric)
        write_fusion_view(view, profile, manifest["fusion"], driver=manifest["driver"],
                          uuid_of=lambda i, p=profile.name: gpu_uuid(p, i), vbios=VBIOS)
        if manifest["nccl"]:
            write_nccl_tests(view, nccl_spec_for(manifest, profile))
        _write_dcgm_views(view, manifest, profile)
        write_device_nodes(view, profile.gpu_count)
        write_k8s_view(view, profile, fabric, manifest["kubernetes"])


def nvbandwidth_spec_for(manifest: dict[str, Any], profile: Any) -> dict[str, Any]:
    """nvbandwidth's declared bandwidths on a node of ``profile``: on a Grace node host copies cross NVLink-C2C,
    at the platform's rate (hilt.sim.fusion_view) times the image's ``c2c_scale`` (default 1)."""
    spec = {k: v for k, v in manifest["nvbandwidth"].items() if k != "c2c_scale"}
    platform = platform_of(profile)
    if platform is not None:
        scale = float(manifest["nvbandwidth"].get("c2c_scale", 1.0))
        spec["h2d_gbps"] = round(platform.h2d_gbps * scale, 3)
        spec["d2h_gbps"] = round(platform.d2h_gbps * scale, 3)
    return spec


def _write_dcgm_views(view: Path, manifest: dict[str, Any], profile: Any) -> None:
    """dcgmi and nvbandwidth for this profile's GPUs (hilt.sim.dcgm_view), where the image ships them."""
    if manifest.get("dcgm"):
        write_dcgmi(view, manifest["dcgm"], profile.gpu_count, profile.gpu_name, manifest["driver"])
    if manifest.get("nvbandwidth"):
        write_nvbandwidth(view, nvbandwidth_spec_for(manifest, profile), profile.gpu_count, profile.gpu_name,
                          manifest["driver"])


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
        *(_profile_digest(p) for p in manifest["profiles"]),
        _module_digest("hilt.sim.nccl_tests_view"),
        _module_digest("hilt.sim.dcgm_view"),
        _module_digest("hilt.sim.trust_view"),
        _module_digest("hilt.sim.fusion_view"),
        _module_digest("hilt.sim.fusion_tools"),
        _module_digest("hilt.sim.k8s_view"),
        _module_digest("hilt.fabric.nvgroups"),
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
        _populate(stage, manifest)
        _tar_deterministic(stage, out)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, cached)
    return out


def build_standard_images(out_dir: Path, cache_dir: Path | None = None, names: list[str] | None = None,
                          profile: str = DEFAULT_PROFILE, profiles: list[str] | None = None) -> list[Path]:
    """The standard set (good, regressed, broken, ...) or the named subset of it, with a view for each of
    ``profiles`` (default: ``[profile]``), the profiles of the rig's nodes."""
    wanted = names or list(STANDARD_IMAGES)
    unknown = [n for n in wanted if n not in STANDARD_IMAGES]
    if unknown:
        raise ConfigError(f"unknown sim image(s) {unknown}; standard images: {list(STANDARD_IMAGES)}")
    views = list(profiles or [profile])
    return [build_image(n, out_dir, cache_dir=cache_dir, **{"profile": views[0], "profiles": views,
                                                             **STANDARD_IMAGES[n]})
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


def unpack_root(image: Image, dest: Path, profile: str | None = None) -> Path:
    """Unpack the image's ``root/`` overlay into ``dest`` (replaced), then the view of ``profile`` (the node's;
    default the image's own) over it, and return it. ConfigError when the image has no view for the profile."""
    dest = Path(dest)
    profile = profile or image.manifest["profile"]
    views = image.manifest.get("profiles") or [image.manifest["profile"]]
    if profile not in views:
        raise ConfigError(f"sim image {image.name}: no view for profile {profile!r} (it has {views})")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(image.path) as tar:
        members = tar.getmembers()
        for prefix in ("root", f"views/{profile}"):
            chosen = [m for m in members if m.name == prefix or m.name.startswith(prefix + "/")]
            for m in chosen:
                m.name = m.name[len(prefix) + 1:] if m.name != prefix else "."
            extract_inside(tar, dest, chosen)
    os.chmod(dest, 0o755)
    return dest
