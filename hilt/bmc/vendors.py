"""What differs per BMC vendor, found from the service root's ``Vendor`` or the system's ``Manufacturer``.

Keep this table small: most quirks are detected from the BMC's own answers (error bodies, allowable values),
which also covers firmware we have never seen. Only what cannot be detected belongs here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VendorTraits:
    name: str
    vmedia_boot_target: str = "Cd"
    """Boot override target that boots the virtual CD."""


# Supermicro (X11 and later): virtual media is attached as a USB CD and boots with target "UsbCd";
# "Cd" boots the physical drive or nothing (the quirk list). rigs.yaml vmedia_target overrides.
_TRAITS = {
    "supermicro": VendorTraits("Supermicro", vmedia_boot_target="UsbCd"),
    "dell": VendorTraits("Dell"),
    "hpe": VendorTraits("HPE"),
    "lenovo": VendorTraits("Lenovo"),
    "openbmc": VendorTraits("OpenBMC"),
    "nvidia": VendorTraits("NVIDIA"),
}


def detect(root: dict[str, Any], system: dict[str, Any]) -> VendorTraits:
    """Vendor traits from the root's ``Vendor`` (Redfish 1.5+) or the system's ``Manufacturer``."""
    for text in (root.get("Vendor"), system.get("Manufacturer"), *(root.get("Oem") or {}).keys()):
        low = str(text or "").lower()
        for key, traits in _TRAITS.items():
            if key in low or (key == "hpe" and low in ("hp", "hewlett packard enterprise")):
                return traits
    return VendorTraits(str(root.get("Vendor") or system.get("Manufacturer") or "unknown"))
