"""Compare a node's trust facts with its profile's `trust:` section (pure; one function per check).

Each returns the problems as sentences that say what was expected and what was found; the suite prefixes the
node's name, e.g. "gpu-03: Secure Boot: BMC says Enabled, OS says disabled".
"""

from __future__ import annotations

from collections.abc import Mapping

from hilt.fabric.trust import ModuleSignature
from hilt.fabric.trustread import TrustFacts
from hilt.profiles.model import FirmwareSpec, TrustSpec


def _word(value: bool | None) -> str:
    return "not reported" if value is None else "enabled" if value else "disabled"


def check_secure_boot(spec: TrustSpec, facts: TrustFacts, bmc_secure_boot: str | None) -> list[str]:
    """The BMC's view, the EFI variable and mokutil must agree with each other and with the profile."""
    problems = []
    if not facts.efi:
        problems.append("Secure Boot: this host has no EFI (/sys/firmware/efi is absent): it booted without UEFI "
                        "(legacy BIOS, or firmware without EFI such as OpenSBI)"
                        + (", and the profile requires Secure Boot" if spec.secure_boot else ""))
        return problems
    os_view = facts.secure_boot_efivar
    if os_view is None:
        problems.append("Secure Boot: the OS shows no SecureBoot EFI variable (firmware without Secure Boot)")
    bmc_view = None if bmc_secure_boot is None else bmc_secure_boot.strip().lower() == "enabled"
    if bmc_view is not None and os_view is not None and bmc_view != os_view:
        problems.append(f"Secure Boot: BMC says {bmc_secure_boot}, OS says {_word(os_view)}")
    if facts.mokutil is not None and os_view is not None and facts.mokutil != os_view:
        problems.append(f"Secure Boot: EFI variable says {_word(os_view)}, mokutil says {_word(facts.mokutil)}")
    if spec.secure_boot and os_view is False:
        problems.append("Secure Boot: required by the profile, OS says disabled")
    if spec.secure_boot and bmc_view is False and os_view is not False:
        problems.append(f"Secure Boot: required by the profile, BMC says {bmc_secure_boot}")
    return problems


def check_kernel(spec: TrustSpec, facts: TrustFacts) -> list[str]:
    """Lockdown mode, module signature enforcement and the taint mask, bit by bit."""
    problems = []
    if spec.lockdown is not None:
        if facts.lockdown is None:
            problems.append(f"lockdown: expected one of {', '.join(spec.lockdown)}, found no lockdown LSM "
                            "(/sys/kernel/security/lockdown absent)")
        elif facts.lockdown not in spec.lockdown:
            problems.append(f"lockdown: expected one of {', '.join(spec.lockdown)}, found {facts.lockdown}")
    if spec.signature_enforcement and facts.sig_enforce is not True:
        found = "N" if facts.sig_enforce is False else "no sig_enforce parameter (kernel without module signing)"
        problems.append(f"module signature enforcement: expected sig_enforce Y, found {found}")
    bad = [d for letter, d in zip(facts.taint.letters, facts.taint.describe(), strict=True)
           if letter not in spec.allowed_taint]
    if bad:
        allowed = "".join(spec.allowed_taint) or "none"
        problems.append(f"kernel taint {facts.taint.mask}: allowed {allowed}, found {'; '.join(bad)}")
    return problems


def check_modules(spec: TrustSpec, facts: TrustFacts) -> list[str]:
    """Every listed module is signed by an allowed signer (only checked when the profile names signers)."""
    problems = []
    for name in spec.modules:
        sig = facts.modules.get(name)
        if not isinstance(sig, ModuleSignature):
            problems.append(f"module {name}: modinfo failed: {sig or 'not read'}")
            continue
        if spec.module_signers is None:
            continue
        if not sig.signed:
            problems.append(f"module {name}: expected a signature by {' or '.join(spec.module_signers)}, "
                            "found none (unsigned)")
        elif sig.signer not in spec.module_signers:
            problems.append(f"module {name}: expected signer {' or '.join(spec.module_signers)}, found {sig.signer!r} "
                            f"(key {sig.sig_key}, {sig.sig_hashalgo})")
    return problems


def check_firmware(spec: TrustSpec, found: Mapping[str, list[str | None]],
                   image: tuple[str, FirmwareSpec | None] | None = None) -> list[str]:
    """Each component's versions (one per GPU for vbios and inforom) against the versions the profile lists as
    compatible, and against those the image's identity declares (``image``: its name and firmware), where it does."""
    problems = _versions(spec.firmware, found, "")
    if image is not None and image[1] is not None:
        problems += _versions(image[1], found, f" (image {image[0]}'s compatibility matrix)")
    return problems


def _versions(firmware: FirmwareSpec, found: Mapping[str, list[str | None]], whose: str) -> list[str]:
    problems = []
    for component, versions in found.items():
        allowed = getattr(firmware, component, None)
        if allowed is None:
            continue
        for i, version in enumerate(versions):
            where = f"{component}[{i}]" if len(versions) > 1 else component
            if version is None:
                problems.append(f"firmware {where}: expected one of {', '.join(allowed)}{whose}, found none reported")
            elif version not in allowed:
                problems.append(f"firmware {where}: expected one of {', '.join(allowed)}{whose}, found {version}")
    return problems


def check_device_nodes(facts: TrustFacts, gpu_count: int) -> list[str]:
    """/dev/nvidia0..N-1 exist for every GPU and none is world-writable."""
    problems = []
    missing = [f"/dev/nvidia{i}" for i in range(gpu_count) if f"/dev/nvidia{i}" not in facts.device_nodes]
    if missing:
        problems.append(f"device nodes: expected /dev/nvidia0..{gpu_count - 1}, missing {', '.join(missing)}")
    writable = [f"{p} ({mode:o})" for p, mode in sorted(facts.device_nodes.items()) if mode & 0o002]
    if writable:
        problems.append(f"device nodes: world-writable: {', '.join(writable)}")
    return problems
