"""Virtual media: find the CD device, eject, insert, with the quirks of real BMCs (the Ironic sequence).

Each quirk sits in the function it bends, with the BMC family that needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hilt.bmc.errors import BmcRequestError, error_blob
from hilt.bmc.transport import Transport

log = logging.getLogger("hilt.bmc")

_PROTOCOLS = {"http": "HTTP", "https": "HTTPS", "nfs": "NFS", "cifs": "CIFS", "smb": "CIFS", "ftp": "FTP",
              "sftp": "SFTP", "tftp": "TFTP", "scp": "SCP", "file": "FILE"}


@dataclass
class VirtualMediaDevice:
    path: str
    resource: dict[str, Any]
    etag: str | None

    @property
    def insert_target(self) -> str | None:
        return ((self.resource.get("Actions") or {}).get("#VirtualMedia.InsertMedia") or {}).get("target")

    @property
    def eject_target(self) -> str | None:
        return ((self.resource.get("Actions") or {}).get("#VirtualMedia.EjectMedia") or {}).get("target")

    @property
    def inserted(self) -> bool:
        return bool(self.resource.get("Inserted")) or bool(self.resource.get("Image"))


def _is_cd(res: dict[str, Any], member_path: str) -> bool:
    types = [str(t).upper() for t in res.get("MediaTypes") or []]
    if types:
        return "CD" in types or "DVD" in types
    # Some BMCs (older iLO, Supermicro) leave MediaTypes out; their CD device says so in its id.
    ident = str(res.get("Id") or member_path.rsplit("/", 1)[-1]).lower()
    return "cd" in ident or "dvd" in ident


def find_cd(t: Transport, system: dict[str, Any],
            managers: Callable[[], list[dict[str, Any]]]) -> VirtualMediaDevice:
    """The CD/DVD device under the System, else under its Manager (iDRAC, iLO, XCC keep it there).

    The Manager is read only when the System has no such device (one request less on most BMCs).
    """
    seen: list[str] = []
    for holder in _holders(system, managers):
        coll_path = (holder.get("VirtualMedia") or {}).get("@odata.id")
        if not coll_path:
            continue
        coll = t.request("GET", coll_path, step="list virtual media", ok=(404,))
        if coll.status == 404 or not isinstance(coll.body, dict):
            continue
        for member in coll.body.get("Members") or []:
            path = member.get("@odata.id")
            if not path:
                continue
            seen.append(path)
            # Expanded members carry MediaTypes already; skip a GET for the ones that are clearly not CDs.
            if member.get("MediaTypes") and not _is_cd(member, path):
                continue
            res = t.request("GET", path, step="read virtual media")
            if _is_cd(res.body or {}, path):
                return VirtualMediaDevice(path, res.body or {}, res.etag)
    where = ", ".join(seen) or "no VirtualMedia collection under the System or its Manager"
    raise BmcRequestError(t.name, "find a virtual CD/DVD device", None, "", f"looked at: {where}")


def _holders(system: dict[str, Any], managers: Callable[[], list[dict[str, Any]]]):
    yield system
    yield from managers()


def eject(t: Transport, dev: VirtualMediaDevice) -> None:
    """Eject whatever is inserted; an already-empty device may refuse, which is fine."""
    if not dev.inserted:
        return
    try:
        if dev.eject_target:
            # Some BMCs (iLO 5, XCC) reject an EjectMedia POST without a JSON body: always send {}.
            t.request("POST", dev.eject_target, {}, step="eject virtual media")
        else:
            t.patch(dev.path, {"Image": None, "Inserted": False}, step="eject virtual media (PATCH)",
                    etag=dev.etag)
    except BmcRequestError as exc:
        if exc.status is None or exc.status >= 500:
            raise
        log.info("BMC %s: eject refused (%s), media was probably already out", t.name, exc.status)


def _missing(exc: BmcRequestError, body: Any, name: str) -> bool:
    return exc.status in (400, 422, 500) and name.lower() in error_blob(body).lower()


def insert(t: Transport, dev: VirtualMediaDevice, image_url: str) -> None:
    """Insert ``image_url``: the InsertMedia action with a minimal body, growing it as the BMC asks."""
    if not dev.insert_target:
        # PATCH-style BMCs (older OpenBMC, some Supermicro): the resource is writable, there is no action.
        # They require Inserted/WriteProtected to be sent explicitly.
        t.patch(dev.path, {"Image": image_url, "Inserted": True, "WriteProtected": True},
                step="insert virtual media (PATCH)", etag=dev.etag)
        return
    # Inserted and WriteProtected default to true; some BMCs (iDRAC 4.x) reject them, so leave them out.
    body: dict[str, Any] = {"Image": image_url}
    scheme = urlsplit(image_url).scheme.lower()
    for _ in range(4):
        try:
            t.request("POST", dev.insert_target, dict(body), step="insert virtual media")
            return
        except BmcRequestError as exc:
            last_body = t.last_error_body
            added = False
            # "requires the parameter TransferProtocolType" (bodies captured by sushy from AMI-based BMCs)
            if "TransferProtocolType" not in body and _missing(exc, last_body, "TransferProtocolType"):
                body["TransferProtocolType"] = _PROTOCOLS.get(scheme, scheme.upper())
                added = True
            # Some iDRAC/XCC firmware: "'TransferMethod' property ... is missing"
            if "TransferMethod" not in body and _missing(exc, last_body, "TransferMethod"):
                body["TransferMethod"] = "Stream"
                added = True
            # BMCs that insist on credentials even for anonymous URLs (sushy sends "none"/"none")
            if "UserName" not in body and (_missing(exc, last_body, "UserName")
                                           or _missing(exc, last_body, "Password")):
                body["UserName"] = "none"
                body["Password"] = "none"
                added = True
            if not added:
                raise
            log.info("BMC %s: InsertMedia asked for %s; retrying", t.name,
                     ", ".join(k for k in body if k != "Image"))
    raise BmcRequestError(t.name, "insert virtual media", None, "the BMC kept asking for more parameters")
