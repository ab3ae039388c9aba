"""Read-only views for reports: evidence of a failed boot, and the inventory of a node's firmware."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hilt.bmc.errors import BmcError
from hilt.bmc.redact import REDACTOR
from hilt.bmc.transport import Transport


@dataclass(frozen=True)
class BmcEvidence:
    """What the BMC saw of a boot: newest log entries first, BootProgress, and what could not be read."""

    log_entries: list[dict[str, Any]] = field(default_factory=list)
    boot_progress: str | None = None
    power_state: str | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"log_entries": self.log_entries, "boot_progress": self.boot_progress,
                "power_state": self.power_state, "errors": self.errors}


@dataclass(frozen=True)
class BmcInventory:
    bmc_firmware: str | None
    bios_version: str | None
    secure_boot: str | None
    """``Enabled``/``Disabled`` (SecureBootCurrentBoot, else SecureBootEnable), None when not reported."""
    model: str | None
    serial: str | None
    manufacturer: str | None
    uuid: str | None = None
    """The System's ``UUID`` (SMBIOS), which node identity is proven against (hilt.provision.identity)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# Log services worth reading for a boot: the SEL and the event log, not audit/debug dumps.
_PREFERRED = ("sel", "event", "log", "iml", "journal")


def collect_evidence(t: Transport, system_path: str, max_entries: int) -> BmcEvidence:
    """Entries of the System's log services and of its Manager's (the BMC's own event log: a failed virtual
    media mount or a watchdog reset is logged there, not in the host's SEL), newest first, bounded."""
    entries: list[dict[str, Any]] = []
    errors: list[str] = []
    progress = power = None
    try:
        system = t.get(system_path, step="read system for evidence").body or {}
        bp = system.get("BootProgress") or {}
        progress = bp.get("LastState") or None
        if progress == "OEM" and bp.get("OemLastState"):
            progress = f"OEM: {bp['OemLastState']}"
        power = system.get("PowerState")
    except BmcError as exc:
        return BmcEvidence(errors=[str(exc)])
    holders: list[tuple[str, str | None]] = [("System", (system.get("LogServices") or {}).get("@odata.id"))]
    managers = [m.get("@odata.id") for m in (system.get("Links") or {}).get("ManagedBy") or [] if isinstance(m, dict)]
    if managers and managers[0]:
        try:
            manager = t.get(managers[0], step="read manager for evidence").body or {}
            holders.append(("Manager", (manager.get("LogServices") or {}).get("@odata.id")))
        except BmcError as exc:
            errors.append(str(exc))
    for holder, services_path in holders:
        if not services_path:
            continue
        try:
            services = t.get(services_path, step=f"list {holder.lower()} log services").body or {}
            paths = [m.get("@odata.id", "") for m in services.get("Members") or [] if isinstance(m, dict)]
            paths.sort(key=_rank)
            for path in paths[:2]:
                try:
                    got = _read_entries(t, path, max_entries)
                except BmcError as exc:
                    errors.append(str(exc))
                    continue
                for e in got:
                    e["log"] = f"{holder}/{e['log']}"
                entries += got
        except BmcError as exc:
            errors.append(str(exc))
    entries.sort(key=lambda e: e.get("created") or "", reverse=True)
    return BmcEvidence(entries[:max_entries], progress, power, errors)


def _rank(path: str) -> int:
    last = path.lower().rstrip("/").rsplit("/", 1)[-1]
    return next((i for i, k in enumerate(_PREFERRED) if k in last), len(_PREFERRED))


def _read_entries(t: Transport, service_path: str, limit: int) -> list[dict[str, Any]]:
    service = t.get(service_path, step="read log service").body or {}
    entries_path = (service.get("Entries") or {}).get("@odata.id") or f"{service_path.rstrip('/')}/Entries"
    members = (t.get(entries_path, step="read log entries").body or {}).get("Members") or []
    out = []
    # Most BMCs append, so the newest entries are last; we take from the end and sort by Created afterwards.
    for m in members[-limit:] if limit > 0 else []:
        if "Message" not in m and "Created" not in m and m.get("@odata.id"):
            m = t.get(m["@odata.id"], step="read log entry").body or {}
        # A BMC's log may quote a failed login's body: entries go to reports, so they are scrubbed like errors.
        out.append({"created": m.get("Created"), "severity": m.get("Severity"),
                    "message": REDACTOR.scrub(str(m.get("Message") or m.get("EntryCode") or "")), "id": m.get("Id"),
                    "log": service.get("Id") or service_path.rsplit("/", 1)[-1]})
    return out


def read_inventory(t: Transport, system: dict[str, Any], manager: dict[str, Any] | None) -> BmcInventory:
    secure = None
    sb_path = (system.get("SecureBoot") or {}).get("@odata.id")
    if sb_path:
        sb = t.request("GET", sb_path, step="read SecureBoot", ok=(404,)).body or {}
        secure = sb.get("SecureBootCurrentBoot")
        if secure is None and "SecureBootEnable" in sb:
            secure = "Enabled" if sb["SecureBootEnable"] else "Disabled"
    return BmcInventory(
        bmc_firmware=(manager or {}).get("FirmwareVersion"),
        bios_version=system.get("BiosVersion"),
        secure_boot=secure,
        model=system.get("Model"),
        serial=system.get("SerialNumber"),
        manufacturer=system.get("Manufacturer"),
        uuid=system.get("UUID"),
    )
