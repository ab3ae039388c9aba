"""Node identity, proven at provisioning: the host that answered SSH is the machine whose BMC we drove.

The host says who it is in SMBIOS (``/sys/class/dmi/id/product_uuid``, ``product_serial``) or, on hosts without
DMI (RISC-V, Arm boards), in its device tree's ``serial-number``; the BMC says it in its System resource
(``UUID``, ``SerialNumber``). A mismatch means the inventory or the cabling is wrong: every later verdict would
be about another machine, so provisioning fails the node as an infrastructure error naming both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hilt.errors import InfrastructureError, ParseError
from hilt.fabric.trust import normalize_uuid, parse_serial

DMI_UUID = "/sys/class/dmi/id/product_uuid"
DMI_SERIAL = "/sys/class/dmi/id/product_serial"
DT_SERIALS = ("/sys/firmware/devicetree/base/serial-number", "/proc/device-tree/serial-number")
IDENTITY_FILES = (DMI_UUID, DMI_SERIAL, *DT_SERIALS)


class IdentityError(InfrastructureError):
    """The host is not the machine the node's BMC manages: the node's state is unknown."""


@dataclass(frozen=True)
class Identity:
    uuid: str | None
    serial: str | None
    source: str
    """Where it was read: "dmi", "devicetree", "redfish", or "none"."""

    def describe(self) -> str:
        return f"UUID {self.uuid or '-'}, serial {self.serial or '-'} ({self.source})"


def host_identity(files: dict[str, str | None]) -> Identity:
    """The host's identity from the files read over SSH (None: absent or unreadable); ParseError on garbage."""
    uuid = files.get(DMI_UUID)
    serial = files.get(DMI_SERIAL)
    if uuid is not None or serial is not None:
        return Identity(normalize_uuid(uuid, DMI_UUID) if uuid and uuid.strip() else None,
                        parse_serial(serial, DMI_SERIAL) if serial is not None else None, "dmi")
    for path in DT_SERIALS:
        if files.get(path) is not None:
            return Identity(None, parse_serial(files[path] or "", path), "devicetree")
    return Identity(None, None, "none")


def bmc_identity(uuid: str | None, serial: str | None) -> Identity:
    try:
        norm = normalize_uuid(uuid, "Redfish System UUID") if uuid else None
    except ParseError:
        norm = uuid.strip().lower()  # a BMC's odd UUID is compared as it is; it will simply not match
    return Identity(norm, (serial or "").strip() or None, "redfish")


def _swapped(uuid: str) -> str:
    """The same SMBIOS UUID with its first three fields byte-swapped (SMBIOS < 2.6 vs >= 2.6 encodings)."""
    a, b, c, rest = uuid[:8], uuid[9:13], uuid[14:18], uuid[18:]

    def flip(x: str) -> str:
        return "".join(reversed([x[i:i + 2] for i in range(0, len(x), 2)]))

    return f"{flip(a)}-{flip(b)}-{flip(c)}{rest}"


def match_identity(host: Identity, bmc: Identity) -> tuple[str, str]:
    """("verified" | "mismatch" | "unverified", why). Every value both sides report must agree."""
    compared, differ = [], []
    if host.uuid and bmc.uuid:
        compared.append("UUID")
        if host.uuid != bmc.uuid and _swapped(host.uuid) != bmc.uuid:
            differ.append("UUID")
    if host.serial and bmc.serial:
        compared.append("serial")
        if host.serial != bmc.serial:
            differ.append("serial")
    if differ:
        return "mismatch", f"{' and '.join(differ)} differ{'s' * (len(differ) == 1)}"
    if compared:
        return "verified", f"{' and '.join(compared)} match{'es' * (len(compared) == 1)}"
    return "unverified", ("the host reports no identity (no DMI, no device-tree serial-number)"
                          if host.source == "none" else "the BMC and the host report no common identity field")


def identity_record(status: str, why: str, host: Identity, bmc: Identity, ssh: str, bmc_url: str) -> dict[str, Any]:
    """What the run record keeps about the check: both identities and both addresses."""
    return {"status": status, "why": why, "ssh": ssh, "bmc": bmc_url,
            "host": {"uuid": host.uuid, "serial": host.serial, "source": host.source},
            "bmc_system": {"uuid": bmc.uuid, "serial": bmc.serial}}
