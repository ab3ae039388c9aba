"""Small protocols that callers depend on instead of a vendor or a wire format (labgrid style).

Provisioning asks for a ``PowerControl`` and a ``BootMedia``; the Redfish ``Bmc`` is one implementation, an
IPMI or vendor client later would be another class, not a branch.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class PowerControl(Protocol):
    def power_state(self) -> str: ...
    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def restart(self) -> None: ...


@runtime_checkable
class BootMedia(Protocol):
    def boot_from_virtual_media(self, image_url: str) -> list[str]:
        """Boot from ``image_url`` on a virtual CD; returns notes for the boot's evidence (slots that refused)."""
        ...

    def boot_from_network(self, target: str = "Pxe", uri: str | None = None) -> None: ...
