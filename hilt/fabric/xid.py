"""Xid events in the kernel log: the driver's own report of GPU faults.

The critical set is the one Azure's GPU node health checks fail a node on (fallen off the bus, double-bit
ECC, row-remap failure, NVLink errors, GSP timeouts, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CRITICAL_XIDS = frozenset({48, 56, 57, 58, 62, 63, 64, 65, 68, 69, 73, 74, 79, 80, 81, 92, 119, 120})

# The message is taken whole and stripped afterwards: a lazy `(.*?)\s*$` is quadratic on runs of blanks.
_XID = re.compile(r"NVRM: Xid \((?:PCI:)?([0-9A-Fa-f:.]{1,40})\): (\d{1,6})\b,?(.*)$")


@dataclass(frozen=True)
class XidEvent:
    pci_bus_id: str
    xid: int
    message: str
    line_no: int

    @property
    def critical(self) -> bool:
        return self.xid in CRITICAL_XIDS


def parse_xids(text: str) -> list[XidEvent]:
    """Every Xid event in kernel log text (dmesg or journalctl -k); other lines are ignored."""
    # No size cap: a kernel log since boot may be large, and the scan is one literal search per line.
    events = []
    for no, line in enumerate(text.splitlines(), start=1):
        m = _XID.search(line) if "NVRM: Xid" in line else None
        if m:
            events.append(XidEvent(m.group(1), int(m.group(2)), " ".join(m.group(3).split())[:1000], no))
    return events


def check_xids(events: list[XidEvent]) -> list[str]:
    """Differences for critical Xids: one line per (GPU, Xid), with the count and the first message."""
    seen: dict[tuple[str, int], list[XidEvent]] = {}
    for e in events:
        if e.critical:
            seen.setdefault((e.pci_bus_id, e.xid), []).append(e)
    return [
        f"Xid {xid} on PCI:{bus} ({len(evs)}x, line {evs[0].line_no}): {evs[0].message}"
        for (bus, xid), evs in seen.items()
    ]
