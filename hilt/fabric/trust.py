"""Trust facts of a booted node: Secure Boot, kernel lockdown, taint, module signatures, identity.

Pure parsers of what the kernel and its tools print (docs/trust.md lists where each is read). Every parser is
linear in its input and raises ParseError on anything that is not the expected output: a trust check that
guesses is worse than one that errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hilt.errors import ParseError
from hilt.fabric.bounds import MAX_DIGITS, check_size

#: The EFI global-variable GUID: /sys/firmware/efi/efivars/SecureBoot-<this> holds the firmware's Secure Boot state.
EFI_GLOBAL_GUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
SECUREBOOT_EFIVAR = f"/sys/firmware/efi/efivars/SecureBoot-{EFI_GLOBAL_GUID}"

LOCKDOWN_MODES = ("none", "integrity", "confidentiality")

#: The kernel's taint bits (Documentation/admin-guide/tainted-kernels.rst): bit -> (letter, meaning).
TAINT_FLAGS: dict[int, tuple[str, str]] = {
    0: ("P", "proprietary module was loaded"),
    1: ("F", "module was force loaded"),
    2: ("S", "kernel running on an out of specification system"),
    3: ("R", "module was force unloaded"),
    4: ("M", "processor reported a Machine Check Exception"),
    5: ("B", "bad page referenced or unexpected page flags"),
    6: ("U", "taint requested by userspace application"),
    7: ("D", "kernel died recently (OOPS or BUG)"),
    8: ("A", "ACPI table overridden by user"),
    9: ("W", "kernel issued warning"),
    10: ("C", "staging driver was loaded"),
    11: ("I", "workaround for bug in platform firmware applied"),
    12: ("O", "externally-built (out-of-tree) module was loaded"),
    13: ("E", "unsigned module was loaded"),
    14: ("L", "soft lockup occurred"),
    15: ("K", "kernel has been live patched"),
    16: ("X", "auxiliary taint, defined for and used by distros"),
    17: ("T", "kernel was built with the struct randomization plugin"),
    18: ("N", "an in-kernel test has been run"),
    19: ("J", "userspace used a mutating debug operation in fwctl"),
}
TAINT_LETTERS = frozenset(letter for letter, _ in TAINT_FLAGS.values())


@dataclass(frozen=True)
class Taint:
    mask: int
    letters: tuple[str, ...]
    """The kernel's letter for every set bit, lowest bit first; a bit the kernel has no letter for is "bit<N>"."""

    def describe(self) -> list[str]:
        by_letter = {letter: (bit, meaning) for bit, (letter, meaning) in TAINT_FLAGS.items()}
        return [f"{x} (bit {by_letter[x][0]}: {by_letter[x][1]})" if x in by_letter else f"{x} (unknown bit)"
                for x in self.letters]


def _one_line(text: str, what: str) -> str:
    check_size(text, what)
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ParseError(f"{what}: expected one line, got {len(lines)}")
    return lines[0].strip()


def parse_lockdown(text: str) -> str:
    """`/sys/kernel/security/lockdown` ("none [integrity] confidentiality") -> the bracketed, active mode."""
    line = _one_line(text, "lockdown")
    tokens = line.split()
    active = [t[1:-1] for t in tokens if t.startswith("[") and t.endswith("]")]
    names = [t.strip("[]") for t in tokens]
    unknown = [n for n in names if n not in LOCKDOWN_MODES]
    if unknown or len(active) != 1 or len(set(names)) != len(names):
        raise ParseError("lockdown: expected the modes none/integrity/confidentiality with exactly one in "
                         "[brackets]", 1, line[:200])
    return active[0]


def parse_taint(text: str) -> Taint:
    """`/proc/sys/kernel/tainted` (a decimal mask) -> the mask and the kernel's letter for every set bit."""
    line = _one_line(text, "tainted")
    if not re.fullmatch(rf"\d{{1,{MAX_DIGITS}}}", line):
        raise ParseError("tainted: expected a non-negative decimal mask", 1, line[:200])
    mask = int(line)
    letters = []
    for bit in range(mask.bit_length()):
        if mask >> bit & 1:
            letters.append(TAINT_FLAGS[bit][0] if bit in TAINT_FLAGS else f"bit{bit}")
    return Taint(mask, tuple(letters))


def parse_sig_enforce(text: str) -> bool:
    """`/sys/module/module/parameters/sig_enforce`: Y or N."""
    line = _one_line(text, "sig_enforce")
    if line not in ("Y", "N"):
        raise ParseError("sig_enforce: expected Y or N", 1, line[:200])
    return line == "Y"


_MOKUTIL = {"SecureBoot enabled": True, "SecureBoot disabled": False,
            "This system doesn't support Secure Boot": None, "EFI variables are not supported on this system": None}
_MOKUTIL_NOTES = ("SecureBoot validation is disabled in shim", "Platform is in Setup Mode")


def parse_mokutil_sb_state(text: str) -> bool | None:
    """`mokutil --sb-state` -> True (enabled), False (disabled), None (no Secure Boot / no EFI on this host)."""
    check_size(text, "mokutil --sb-state")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = [line for line in lines if line in _MOKUTIL]
    others = [line for line in lines if line not in _MOKUTIL and line not in _MOKUTIL_NOTES]
    if len(found) != 1 or others:
        bad = (others or lines or [""])[0]
        raise ParseError("mokutil --sb-state: expected 'SecureBoot enabled' or 'SecureBoot disabled'", None, bad[:200])
    return _MOKUTIL[found[0]]


def parse_od_bytes(text: str) -> bytes:
    """`od -An -v -t x1 FILE` -> the file's bytes (how a binary efivar travels over a text channel)."""
    check_size(text, "od")
    out = bytearray()
    for no, line in enumerate(text.splitlines(), 1):
        for token in line.split():
            if not re.fullmatch(r"[0-9a-fA-F]{2}", token):
                raise ParseError("od: expected two-digit hex bytes", no, line[:200])
            out.append(int(token, 16))
    return bytes(out)


def parse_secureboot_efivar(data: bytes) -> bool:
    """The SecureBoot EFI variable as efivarfs shows it: 4 attribute bytes, then one byte 0 or 1."""
    if len(data) != 5 or data[4] not in (0, 1):
        raise ParseError(f"SecureBoot efivar: expected 4 attribute bytes and one byte 0 or 1, got {data[:16].hex(' ')}")
    return data[4] == 1


@dataclass(frozen=True)
class ModuleSignature:
    name: str
    signer: str | None
    sig_key: str | None
    sig_hashalgo: str | None

    @property
    def signed(self) -> bool:
        return bool(self.signer or self.sig_key)


_MODINFO_LINE = re.compile(r"^([a-z_][a-z0-9_]{0,39}):(.*)$")


def parse_modinfo(text: str, module: str) -> ModuleSignature:
    """Full `modinfo MODULE` output -> its signature fields (absent on an unsigned module).

    Continuation lines (the hex `signature:` block) start with whitespace; any other line is an error.
    """
    check_size(text, "modinfo")
    fields: dict[str, str] = {}
    last = None
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line[0] in " \t":
            if last is None:
                raise ParseError("modinfo: continuation line before any field", no, line[:200])
            continue
        match = _MODINFO_LINE.match(line)
        if not match:
            raise ParseError("modinfo: expected 'field: value'", no, line[:200])
        last = match.group(1)
        fields.setdefault(last, match.group(2).strip())
    if "filename" not in fields and "name" not in fields:
        raise ParseError(f"modinfo {module}: no filename or name field: not modinfo output")
    return ModuleSignature(fields.get("name") or module, fields.get("signer") or None,
                           fields.get("sig_key") or None, fields.get("sig_hashalgo") or None)


def parse_modinfo_field(text: str, field: str) -> str | None:
    """`modinfo -F FIELD MODULE` -> the value, None when the module has none (empty output)."""
    check_size(text, f"modinfo -F {field}")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    if len(lines) != 1:
        raise ParseError(f"modinfo -F {field}: expected one value line", 1, lines[0][:200])
    return lines[0]


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def normalize_uuid(text: str, what: str) -> str:
    """A SMBIOS/Redfish UUID in its canonical lower-case form (DMI prints lower case, Redfish often upper)."""
    value = _one_line(text, what)
    if not _UUID.match(value):
        raise ParseError(f"{what}: expected a UUID like 4c4c4544-0042-3510-8052-b3c04f4d4e32", 1, value[:200])
    return value.lower()


def parse_serial(text: str, what: str) -> str | None:
    """`product_serial` or the device tree's NUL-terminated `serial-number` -> the serial, None when blank."""
    check_size(text, what)
    value = text.replace("\x00", "").strip()
    if "\n" in value or len(value) > 128:
        raise ParseError(f"{what}: expected one short serial number", 1, value[:200])
    return value or None
