"""Virtual media: find the CD device, eject, insert, with the quirks of real BMCs (the Ironic sequence).

Each quirk sits in the function it bends, with the BMC family that needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hilt.bmc.errors import BmcRequestError, error_blob, extended_messages
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
        """Whether media is in: ``Inserted`` when the BMC reports it. Supermicro X12/H13 keep ``Image`` after an
        eject with ``Inserted: false`` (community.general#6969), some AMI firmware shows ``Image: "None"``; such a
        slot is empty and needs no eject (which that firmware refuses)."""
        if "Inserted" in self.resource and self.resource["Inserted"] is not None:
            return bool(self.resource["Inserted"])
        return str(self.resource.get("Image") or "").strip() not in ("", "None", "null")


def _is_cd(res: dict[str, Any], member_path: str) -> bool:
    types = [str(t).upper() for t in res.get("MediaTypes") or []]
    if types:
        return "CD" in types or "DVD" in types
    # Some BMCs (older iLO, Supermicro) leave MediaTypes out; their CD device says so in its id.
    ident = str(res.get("Id") or member_path.rsplit("/", 1)[-1]).lower()
    return "cd" in ident or "dvd" in ident


def find_cds(t: Transport, system: dict[str, Any], managers: Callable[[], list[dict[str, Any]]],
             prefer: tuple[str, ...] = ()) -> Iterator[VirtualMediaDevice]:
    """The CD/DVD-capable devices under the System, else under its Manager (iDRAC 10 keeps them under the
    System; iLO, AMI, Supermicro, bmcweb under the Manager), best first, each read only when it is wanted.

    Order: the vendor's boot slots (``prefer``), then ids that say CD/DVD, then the rest, so that the usual
    single-CD BMC costs one GET per device. Raises when there is none: before any write or reset.
    """
    seen: list[str] = []
    found = False
    for holder in _holders(system, managers):
        coll_path = (holder.get("VirtualMedia") or {}).get("@odata.id")
        if not coll_path:
            continue
        coll = t.request("GET", coll_path, step="list virtual media", ok=(404,))
        if coll.status == 404 or not isinstance(coll.body, dict):
            seen.append(f"{coll_path} (404)")
            continue
        members = [m for m in coll.body.get("Members") or [] if isinstance(m, dict) and m.get("@odata.id")]
        if not members:
            seen.append(f"{coll_path} (no members)")
        for member in sorted(members, key=lambda m: _rank(m["@odata.id"], prefer)):
            path = member["@odata.id"]
            seen.append(path)
            # Expanded members carry MediaTypes already; skip a GET for the ones that are clearly not CDs.
            if member.get("MediaTypes") and not _is_cd(member, path):
                continue
            res = t.request("GET", path, step="read virtual media")
            if _is_cd(res.body or {}, path):
                found = True
                yield VirtualMediaDevice(path, res.body or {}, res.etag)
        if found:
            return
    if not found:
        where = ", ".join(seen) or "no VirtualMedia collection under the System or its Manager"
        raise BmcRequestError(t.name, "find a virtual CD/DVD device", None, "",
                              f"this BMC offers no virtual CD (looked at: {where}); no reset was sent")


def find_cd(t: Transport, system: dict[str, Any],
            managers: Callable[[], list[dict[str, Any]]]) -> VirtualMediaDevice:
    """The first CD/DVD device (see ``find_cds``)."""
    return next(find_cds(t, system, managers))


def _rank(path: str, prefer: tuple[str, ...]) -> tuple[int, int]:
    ident = path.rstrip("/").rsplit("/", 1)[-1]
    if ident in prefer:
        return (0, prefer.index(ident))
    return (1, 0) if ("cd" in ident.lower() or "dvd" in ident.lower()) else (2, 0)


def insert_first(t: Transport, devices: Iterable[VirtualMediaDevice], image_url: str
                 ) -> tuple[VirtualMediaDevice, list[str]]:
    """Eject and insert into the first device that takes the image; a slot that refuses (see ``_slot_refused``)
    sends us to the next one. Returns the device and one line per slot that refused, for the boot's evidence."""
    refused: list[str] = []
    for dev in devices:
        if not dev.insert_target and "#VirtualMedia.EjectMedia" in (dev.resource.get("Actions") or {}):
            refused.append(f"{dev.path}: no InsertMedia action")  # bmcweb's Slot_0: an eject-only slot
            continue
        try:
            eject(t, dev)
            insert(t, dev, image_url)
        except BmcRequestError as exc:
            why = _slot_refused(exc, t.last_error_body)
            if why is None:
                raise
            refused.append(f"{dev.path}: {why}")
            log.info("BMC %s: virtual media %s refused the image (%s); trying the next slot", t.name, dev.path, why)
            continue
        dev.resource = {**dev.resource, "Image": image_url, "Inserted": True}
        return dev, refused
    raise BmcRequestError(t.name, "insert virtual media", None, "",
                          "every virtual CD refused the image: " + " | ".join(refused) + "; no reset was sent")


def _slot_refused(exc: BmcRequestError, body: Any) -> str | None:
    """Why this slot, and not the BMC, refused the image (the next slot may take it), or None.

    A 4xx (409 ResourceInUse, a media type the slot does not take) is the slot's answer; 401/403 are ours.
    A 5xx with no Redfish error body is the slot's too: one vendor's firmware answers InsertMedia on its second
    slot with a bare HTTP 500 while its first slot takes the image (issue 24). A 5xx that carries a Redfish
    error says what is wrong with the BMC, and 502/503/504 were retried by the transport as a busy BMC: those
    fail the boot.
    """
    status = exc.status
    if status is None or status in (401, 403):
        return None
    if status < 500:
        return str(exc)
    if status in (502, 503, 504) or extended_messages(body) or (isinstance(body, dict) and body.get("error")):
        return None
    return f"{exc.step} answered HTTP {status} with no Redfish error body: that slot's refusal"


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
