"""What differs per BMC vendor, found from the service root's ``Vendor`` or the system's ``Manufacturer``.

Keep this table small: most quirks are detected from the BMC's own answers (error bodies, allowable values),
which also covers firmware we have never seen. Only what cannot be detected belongs here, each with its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ModeRule = Literal["when-changing", "always", "never"]


@dataclass(frozen=True)
class VendorTraits:
    name: str
    vmedia_boot_target: str = "Cd"
    """Boot override target that boots the virtual CD."""
    mode_rule: ModeRule = "when-changing"
    """When ``BootSourceOverrideMode`` goes into a boot-override PATCH:
    ``always``: the firmware resets the mode to its default unless it is sent with every PATCH;
    ``never``: the firmware rejects the PATCH when it carries the mode at all (even unchanged);
    ``when-changing``: only when it must change (and a 400 is retried once in the other form)."""
    vmedia_slots: tuple[str, ...] = ()
    """Virtual-media slot ids to try first, in the order the firmware boots from them."""


_TRAITS = {
    # Supermicro (X11 and later): virtual media is a USB CD and boots with target "UsbCd"; "Cd" boots the
    # physical drive or nothing. The mode falls back to its default unless sent with every boot PATCH, "by
    # design" per Supermicro (DMTF/Redfishtool#106; ironcore-dev/metal-operator#607); where the system does not
    # report the mode at all (X10), it is left out (metal-operator#985).
    # NVIDIA's bmcweb on Supermicro GB300 (Vendor "Supermicro") lists three CD-capable slots USB2, USB1, Slot_0;
    # Slot_0 has no InsertMedia. ASSUMED (no public vendor document found): the host boots USB1 first.
    "supermicro": VendorTraits("Supermicro", vmedia_boot_target="UsbCd", mode_rule="always",
                               vmedia_slots=("USB1", "USB2")),
    # iDRAC: BootSourceOverrideMode is read-only in the override, a PATCH carrying it is refused with SYS410
    # (ansible-collections/community.general#5091).
    "dell": VendorTraits("Dell", mode_rule="never"),
    # iLO 5/6/7: the mode is not writable; a PATCH carrying it, even unchanged, answers 400
    # (community.general#3509, fixed by sending it only when asked, #3581). Virtual media 1 is the floppy/USB
    # key, 2 the CD/DVD (HPE's iLO RESTful API examples; the same in the iLO 5, 6 and 7 captures): try 2 first.
    "hpe": VendorTraits("HPE", mode_rule="never", vmedia_slots=("2",)),
    "lenovo": VendorTraits("Lenovo"),
    "openbmc": VendorTraits("OpenBMC"),
    "nvidia": VendorTraits("NVIDIA", vmedia_slots=("USB1", "USB2")),
}


def detect(root: dict[str, Any], system: dict[str, Any]) -> VendorTraits:
    """Vendor traits from the root's ``Vendor`` (Redfish 1.5+) or the system's ``Manufacturer``."""
    for text in (root.get("Vendor"), system.get("Manufacturer"), *(root.get("Oem") or {}).keys()):
        low = str(text or "").lower()
        for key, traits in _TRAITS.items():
            if key in low or (key == "hpe" and low in ("hp", "hewlett packard enterprise")):
                return traits
    return VendorTraits(str(root.get("Vendor") or system.get("Manufacturer") or "unknown"))


def send_mode(traits: VendorTraits, current: str | None, wanted: str | None) -> bool:
    """Whether the boot-override PATCH carries ``BootSourceOverrideMode`` (the rule table above)."""
    if not current or not wanted:
        return False  # the system does not report a mode: sending one is refused (metal-operator#985)
    if traits.mode_rule == "always":
        return True
    if traits.mode_rule == "never":
        return False
    return current != wanted
