"""Read a node's trust facts in one SSH round trip (the thin edge; parsing is hilt.fabric.trust's)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hilt.errors import NodeError, ParseError
from hilt.fabric.snapshot import SECTION_FN, Section, split_sections
from hilt.fabric.trust import (
    SECUREBOOT_EFIVAR,
    ModuleSignature,
    Taint,
    parse_lockdown,
    parse_modinfo,
    parse_mokutil_sb_state,
    parse_od_bytes,
    parse_secureboot_efivar,
    parse_sig_enforce,
    parse_taint,
)

if TYPE_CHECKING:  # a type only: the node protocol's package is a layer above this one (docs/architecture.md)
    from hilt.node.protocol import NodeLike

MISSING_MARKER = "@@HILT-MISSING@@"
"""What the trust script prints for a section whose file, directory or command the node lacks (no EFI, no
lockdown LSM, no mokutil): the parsers read it as absent, not as an empty value."""


def trust_script(modules: list[str]) -> str:
    """Each fact in its own section; a file that does not exist prints a marker, not an error."""
    lines = [
        SECTION_FN,
        f"rd() {{ [ -e \"$1\" ] || {{ echo {MISSING_MARKER}; return 0; }}; cat \"$1\"; }}",
        f"efi() {{ [ -d /sys/firmware/efi ] || {{ echo {MISSING_MARKER}; return 0; }}; "
        f"[ -e {SECUREBOOT_EFIVAR} ] || {{ echo novar; return 0; }}; od -An -v -t x1 {SECUREBOOT_EFIVAR}; }}",
        f"mok() {{ command -v mokutil >/dev/null || {{ echo {MISSING_MARKER}; return 0; }}; mokutil --sb-state; }}",
        "section efivar efi",
        "section mokutil mok",
        "section lockdown rd /sys/kernel/security/lockdown",
        "section sig_enforce rd /sys/module/module/parameters/sig_enforce",
        "section tainted cat /proc/sys/kernel/tainted",
        "section devnodes sh -c 'for f in /dev/nvidia[0-9]*; do [ -e \"$f\" ] && stat -c \"%n %a\" \"$f\"; done; true'",
    ]
    for module in modules:
        lines.append(f"section modinfo:{module} modinfo {shlex.quote(module)}")
    return "\n".join(lines) + "\n"


@dataclass
class TrustFacts:
    """What the OS says about itself; None where the host does not have the fact (no EFI, no lockdown LSM)."""

    efi: bool
    secure_boot_efivar: bool | None
    mokutil: bool | None
    mokutil_installed: bool
    lockdown: str | None
    sig_enforce: bool | None
    taint: Taint
    modules: dict[str, ModuleSignature | str] = field(default_factory=dict)
    """module -> its signature, or why it could not be read (not loaded/installed)."""
    device_nodes: dict[str, int] = field(default_factory=dict)
    """/dev/nvidiaN -> its mode bits."""


def _text(sections: dict[str, Section], name: str, node: str) -> str | None:
    section = sections.get(name)
    if section is None:
        raise NodeError(f"{node}: trust facts: the script printed no {name} section")
    if not section.ok:
        raise NodeError(f"{node}: trust facts: reading {name} failed (rc={section.rc}): {section.text[:200]}")
    return None if section.text.strip() == MISSING_MARKER else section.text


def parse_trust_sections(sections: dict[str, Section], node: str, modules: list[str]) -> TrustFacts:
    """Pure: the framed script output to facts; ParseError names the node and the fact."""
    try:
        efivar = _text(sections, "efivar", node)
        efi = efivar is not None
        sb_var = None
        if efivar is not None and efivar.strip() != "novar":
            sb_var = parse_secureboot_efivar(parse_od_bytes(efivar))
        mok_text = _text(sections, "mokutil", node)
        lockdown = _text(sections, "lockdown", node)
        sig = _text(sections, "sig_enforce", node)
        facts = TrustFacts(
            efi=efi, secure_boot_efivar=sb_var,
            mokutil=None if mok_text is None else parse_mokutil_sb_state(mok_text),
            mokutil_installed=mok_text is not None,
            lockdown=None if lockdown is None else parse_lockdown(lockdown),
            sig_enforce=None if sig is None else parse_sig_enforce(sig),
            taint=parse_taint(_text(sections, "tainted", node) or ""),
        )
        for line in (_text(sections, "devnodes", node) or "").splitlines():
            path, _, mode = line.strip().rpartition(" ")
            if not path.startswith("/dev/nvidia") or not mode.isdigit() or len(mode) > 4:
                raise ParseError("device nodes: expected '/dev/nvidiaN MODE'", None, line[:200])
            facts.device_nodes[path] = int(mode, 8)
        for module in modules:
            section = sections.get(f"modinfo:{module}")
            if section is None or not section.ok:
                facts.modules[module] = (section.text.strip()[:200] if section else "not read") or "modinfo failed"
            else:
                facts.modules[module] = parse_modinfo(section.text, module)
    except ParseError as exc:
        raise ParseError(f"{node}: {exc}") from None
    return facts


def read_trust_facts(node: NodeLike, modules: list[str], timeout: float = 60) -> TrustFacts:
    result = node.run_script(trust_script(modules), timeout=timeout, check=False)
    return parse_trust_sections(split_sections(result.stdout), node.name, modules)
