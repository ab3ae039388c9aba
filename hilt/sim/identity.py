"""A simulated node's hardware identity: the SMBIOS files its OS shows, matching its sushy-emulator System.

Each node's ``/sys/class/dmi/id/product_uuid`` is the UUID of the System its BMC serves (sushy's fake driver
reports it as ``UUID``), so provisioning proves identity on the sim as on a real rack. The ``swap_bmcs``
provider option swaps two nodes' BMC entries in the generated rig: the inventory then lies, as a miscabled
or mistyped rack does, and identity must catch it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def write_dmi(root: Path, system_uuid: str, serial: str) -> None:
    """``sys/class/dmi/id/{product_uuid,product_serial}`` in this boot's unpacked root (root-only, as the kernel
    makes them): nodeinit binds the root's /sys/class entries over the host's, so the node sees its own."""
    dmi = root / "sys" / "class" / "dmi" / "id"
    dmi.mkdir(parents=True, exist_ok=True)
    for name, value in (("product_uuid", system_uuid.lower()), ("product_serial", serial)):
        path = dmi / name
        path.write_text(value + "\n")
        os.chmod(path, 0o400)


def swap_bmcs(rig: dict[str, Any], pair: list[str]) -> None:
    """Swap two nodes' ``bmc`` entries in a generated rig (the fault ``swap_bmcs: [node1, node2]``)."""
    nodes = rig["nodes"]
    if len(pair) != 2 or pair[0] == pair[1] or any(n not in nodes for n in pair):
        raise ValueError(f"swap_bmcs: expected two distinct nodes of the sim ({', '.join(nodes)}), got {pair!r}")
    a, b = pair
    nodes[a]["bmc"], nodes[b]["bmc"] = nodes[b]["bmc"], nodes[a]["bmc"]
