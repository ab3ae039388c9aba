"""The few facts of ``nvidia-smi -q`` that GPU Feature Discovery labels: name, UUID, memory, fabric clique.

A minimal reader, on purpose: the NVLink Fusion work brings the full ``nvidia-smi -q`` parser
(``hilt.fabric.gpuquery``); this one reads only what the GFD check compares, the way GFD reads NVML: the
product name, the frame buffer total in MiB (``nvidia.com/gpu.memory``) and the fabric's ClusterUUID and
CliqueId (``nvidia.com/gpu.clique`` = ``<ClusterUUID>.<CliqueId>``). Keys are matched by name within their
section, never by column: the key column is 38 characters wide in some drivers and 51 in others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size

_GPU = re.compile(r"^GPU ([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*$")
_KEY_VALUE = re.compile(r"^( *)(\S.*?)\s+:\s?(.*?)\s*$")
_SECTION = re.compile(r"^( *)(\S.*?)\s*$")
_MIB = re.compile(r"^(\d+)\s*MiB$")


@dataclass(frozen=True)
class SmiGpu:
    """One GPU as ``nvidia-smi -q`` shows it; None where it printed N/A or nothing."""

    bus_id: str
    name: str | None
    uuid: str | None
    memory_total_mib: int | None
    fabric_state: str | None
    clique_id: str | None
    cluster_uuid: str | None

    @property
    def clique(self) -> str | None:
        """``<ClusterUUID>.<CliqueId>``, GFD's ``nvidia.com/gpu.clique``; None unless the fabric has both."""
        if self.cluster_uuid and self.clique_id:
            return f"{self.cluster_uuid}.{self.clique_id}"
        return None


def _value(text: str) -> str | None:
    text = text.strip()
    return None if text in ("", "N/A") else text


def parse_smi_query(text: str) -> list[SmiGpu]:
    """Every GPU block of ``nvidia-smi -q`` output; ParseError (line number and line) when there is none."""
    check_size(text, "nvidia-smi -q output")
    gpus: list[SmiGpu] = []
    current: dict[str, str | None] | None = None
    sections: list[tuple[int, str]] = []  # (indent, section name) enclosing the current line

    def close() -> None:
        if current is not None:
            memory = current.get("FB Memory Usage/Total")
            match = _MIB.match(memory or "")
            gpus.append(SmiGpu(
                bus_id=current["bus"] or "", name=current.get("Product Name"), uuid=current.get("GPU UUID"),
                memory_total_mib=int(match.group(1)) if match else None,
                fabric_state=current.get("Fabric/State"), clique_id=current.get("Fabric/CliqueId"),
                cluster_uuid=current.get("Fabric/ClusterUUID")))

    for line in text.splitlines():
        gpu = _GPU.match(line)
        if gpu:
            close()
            current, sections = {"bus": gpu.group(1)}, []
            continue
        if current is None or not line.strip():
            continue
        kv = _KEY_VALUE.match(line)
        indent = len(line) - len(line.lstrip(" "))
        while sections and sections[-1][0] >= indent:
            sections.pop()
        if kv:
            path = "/".join([s for _, s in sections] + [kv.group(2)])
            current.setdefault(path, _value(kv.group(3)))
            continue
        section = _SECTION.match(line)
        if section and indent > 0:  # a section heading ("    FB Memory Usage"); text at column 0 ends none
            sections.append((indent, section.group(2)))
    close()
    if not gpus:
        lines = text.splitlines()
        first = next((i for i, ln in enumerate(lines) if ln.strip()), 0)
        raise ParseError("not `nvidia-smi -q` output: no 'GPU <bus id>' block", first + 1,
                         lines[first][:200] if lines else "")
    return gpus


def node_clique(gpus: list[SmiGpu]) -> str | None:
    """The node's fabric clique as GFD derives it: one ClusterUUID and one CliqueId over every attached GPU."""
    cliques = {g.clique for g in gpus if g.clique is not None}
    return cliques.pop() if len(cliques) == 1 else None
