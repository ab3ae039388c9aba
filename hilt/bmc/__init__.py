"""The BMC layer: Redfish power and boot control that survives real-world BMCs. See docs/bmc.md."""

from hilt.bmc.client import Bmc
from hilt.bmc.errors import BmcError, BmcRequestError
from hilt.bmc.evidence import BmcEvidence, BmcInventory
from hilt.bmc.protocols import BootMedia, PowerControl

__all__ = ["Bmc", "BmcError", "BmcRequestError", "BmcEvidence", "BmcInventory", "BootMedia", "PowerControl"]
