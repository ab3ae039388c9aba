"""What a simulated node shows of its boot trust: the files and tools a real node's trust facts come from.

An image declares its trust facts (manifest ``trust``); this writes them where a real kernel, firmware and
kmod put them, in the formats the real ones print, so ``hilt.fabric.trustread`` reads a sim node exactly as a
real one: the ``SecureBoot`` EFI variable (4 attribute bytes + 1 value byte) under
``/sys/firmware/efi/efivars``, ``/sys/kernel/security/lockdown``, ``/sys/module/module/parameters/sig_enforce``,
``/proc/sys/kernel/tainted``, ``mokutil --sb-state``, ``modinfo MODULE`` (with the signature block a signed
module carries), and ``/dev/nvidia*``. :mod:`hilt.sim.nodeinit` mounts them in the node's namespace.

The machine's side is not the image's: its BMC serves the SecureBoot resource and BIOS version of
:data:`SYSTEM_FIRMWARE` (sushy's fake driver, :mod:`hilt.sim.sushy_fast`) and the Manager's FirmwareVersion
sushy-emulator always reports (:data:`BMC_FIRMWARE`); VBIOS and InfoROM are the GPUs' (the NVML view,
:mod:`hilt.sim.fabric_view`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from hilt.sim.fabric_view import write_file

SECUREBOOT_VAR = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
MODULES = ("nvidia", "nvidia_uvm", "nvidia_modeset", "nvidia_drm")
SIGNER = "hilt sim: NVIDIA driver module signing key"

#: What a good image's node shows: Secure Boot on (and mokutil agrees), lockdown integrity (Secure Boot's
#: default on Debian/Ubuntu kernels), module signatures enforced, tainted O only (the NVIDIA open kernel
#: modules are dual MIT/GPL, so not P, and out of tree), every NVIDIA module signed, /dev/nvidia* 0660
#: (NVreg_DeviceFileMode=0660; the driver's default 0666 is world-writable).
TRUST_OK: dict[str, Any] = {
    "efi": True,
    "secure_boot": True,
    "mokutil": None,  # None: mokutil reports what the EFI variable says
    "lockdown": "integrity",
    "sig_enforce": True,
    "taint": 4096,
    "unsigned": [],  # modules shipped without a signature
    "device_mode": "0660",
}
TRUST_KEYS = frozenset(TRUST_OK)

#: Every simulated machine's firmware as its BMC reports it (fields of a sushy fake-driver system): Secure
#: Boot enabled (SecureBootEnable true, SecureBootCurrentBoot Enabled) and its BIOS version.
SYSTEM_FIRMWARE: dict[str, Any] = {"secure_boot": True, "versions": {"BiosVersion": "2.2.1"}}
#: The Manager FirmwareVersion sushy-emulator serves (fixed in sushy; not configurable).
BMC_FIRMWARE = "1.00"


def trust_spec(declared: dict[str, Any] | None) -> dict[str, Any]:
    """The image's declared trust facts over the good defaults; an unknown key is an error naming the valid ones."""
    declared = declared or {}
    unknown = sorted(set(declared) - TRUST_KEYS)
    if unknown:
        raise ValueError(f"trust: unknown field(s) {unknown}; valid: {sorted(TRUST_KEYS)}")
    spec = {**TRUST_OK, **declared}
    if spec["lockdown"] not in ("none", "integrity", "confidentiality"):
        raise ValueError(f"trust.lockdown: {spec['lockdown']!r}; valid: none, integrity, confidentiality")
    mode = str(spec["device_mode"])
    if not (len(mode) in (3, 4) and all(c in "01234567" for c in mode)):
        raise ValueError(f"trust.device_mode: {mode!r}; expected an octal mode such as 0660")
    return spec


def _hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


def modinfo_text(module: str, kernel: str, driver: str, signed: bool) -> str:
    """``modinfo MODULE`` as kmod 30 prints it for a DKMS-built NVIDIA open module (signed: the PKCS#7 block)."""
    digest = hashlib.sha512(f"{module} {driver}".encode()).digest()
    lines = [
        f"filename:       /lib/modules/{kernel}/updates/dkms/{module}.ko",
        f"version:        {driver}",
        "supported:      external",
        "license:        Dual MIT/GPL",
        f"srcversion:     {hashlib.sha256(module.encode()).hexdigest()[:23].upper()}",
        "depends:        " + ("" if module == "nvidia" else "nvidia"),
        "retpoline:      Y",
        f"name:           {module}",
        f"vermagic:       {kernel} SMP preempt mod_unload modversions ",
    ]
    if signed:
        lines += [
            "sig_id:         PKCS#7",
            f"signer:         {SIGNER}",
            f"sig_key:        {_hex(hashlib.sha256(SIGNER.encode()).digest()[:20])}",
            "sig_hashalgo:   sha512",
            f"signature:      {_hex(digest[:19])}:",
            f"\t\t{_hex(digest[19:38])}:",
            f"\t\t{_hex(digest[38:])}",
        ]
    return "\n".join(lines) + "\n"


def _modinfo_script(texts: dict[str, str]) -> str:
    cases = "".join(f"  {name}|{name.replace('_', '-')})\ncat <<'HILT_EOF'\n{text}HILT_EOF\n    ;;\n"
                    for name, text in texts.items())
    return (
        "#!/bin/sh\n# modinfo of a simulated node (hilt.sim.trust_view): what kmod prints for this image's modules.\n"
        'field=; if [ "$1" = "-F" ]; then field=$2; shift 2; fi\n'
        'show() {\ncase "$1" in\n' + cases
        + '  *) echo "modinfo: ERROR: Module $1 not found." >&2; return 1 ;;\nesac\n}\n'
        'if [ -z "$field" ]; then show "$1"; exit $?; fi\n'
        'out=$(show "$1") || exit 1\n'
        'printf "%s\\n" "$out" | sed -n "s/^$field: *//p"\n'
    )


def _mokutil_script(enabled: bool) -> str:
    state = "SecureBoot enabled" if enabled else "SecureBoot disabled"
    return (
        "#!/bin/sh\n# mokutil of a simulated node (hilt.sim.trust_view): --sb-state reads the image's EFI variable.\n"
        f'if [ "$1" = "--sb-state" ]; then echo "{state}"; exit 0; fi\n'
        'echo "mokutil (simulated): only --sb-state is supported" >&2\nexit 2\n'
    )


def write_trust_root(root: Path, manifest: dict[str, Any]) -> None:
    """The trust facts every view of the image shares (firmware, kernel, modules)."""
    spec = trust_spec(manifest.get("trust"))
    root = Path(root)
    if spec["efi"]:
        efivars = root / "sys/firmware/efi/efivars"
        efivars.mkdir(parents=True, exist_ok=True)
        if spec["secure_boot"] is not None:
            # EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS, then the value byte
            write_file(efivars / SECUREBOOT_VAR, bytes([6, 0, 0, 0, 1 if spec["secure_boot"] else 0]))
        mok = spec["mokutil"] if spec["mokutil"] is not None else bool(spec["secure_boot"])
        write_file(root / "usr/local/bin/mokutil", _mokutil_script(mok), 0o755)
    modes = ["none", "integrity", "confidentiality"]
    write_file(root / "sys/kernel/security/lockdown",
           " ".join(f"[{m}]" if m == spec["lockdown"] else m for m in modes) + "\n", 0o444)
    write_file(root / "sys/module/module/parameters/sig_enforce", "Y\n" if spec["sig_enforce"] else "N\n", 0o444)
    write_file(root / "proc/sys/kernel/tainted", f"{int(spec['taint'])}\n", 0o444)
    texts = {m: modinfo_text(m, manifest["kernel"], manifest["driver"], m not in spec["unsigned"]) for m in MODULES}
    write_file(root / "usr/local/bin/modinfo", _modinfo_script(texts), 0o755)


def write_device_nodes(view: Path, gpu_count: int) -> None:
    """``/dev/nvidia0..N-1``, ``nvidiactl`` and ``nvidia-uvm`` of a node with ``gpu_count`` GPUs (placeholders:
    only their names and modes matter; the mode is set at boot by :func:`apply_device_mode`, as a tar of the
    image keeps no group/other write bit)."""
    for name in [f"nvidia{i}" for i in range(gpu_count)] + ["nvidiactl", "nvidia-uvm"]:
        write_file(Path(view) / "dev" / name, "")


def apply_device_mode(root: Path, manifest: dict[str, Any]) -> None:
    """Give the booted root's /dev/nvidia* the mode the image declares (what NVreg_DeviceFileMode does)."""
    mode = int(str(trust_spec(manifest.get("trust"))["device_mode"]), 8)
    dev = Path(root) / "dev"
    if dev.is_dir():
        for entry in dev.iterdir():
            if entry.name.startswith("nvidia") and entry.is_file():
                os.chmod(entry, mode)
