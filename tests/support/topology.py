"""A real H100 `nvidia-smi topo -m` capture, a degraded copy of it, and the record the collector makes of one."""

from __future__ import annotations

from pathlib import Path

from hilt.fabric.topo import parse_topology
from hilt.profiles.model import load_profile
from hilt.record.run_record import TopologyRecord

TOPO = Path(__file__).resolve().parents[1] / "data" / "corpus" / "topo"  # provenance: ../data/corpus/PROVENANCE.md
H100 = (TOPO / "h100-8gpu-nv18-8nic-pix-sglang-check-env.txt").read_text()


def degraded_h100() -> str:
    """The real H100 capture with one link (GPU3-GPU5) down to NV12, as a node with lost NVLink lanes shows it.
    Edited here in both rows, not stored, so the file stays as captured."""
    lines = H100.splitlines()
    for i, line in enumerate(lines):
        cells = line.split()
        if cells and cells[0] in ("GPU3", "GPU5"):
            other = 5 if cells[0] == "GPU3" else 3
            cells[1 + other] = "NV12"
            lines[i] = "\t".join(cells)
    return "\n".join(lines)


def topology_record(profile: str, text: str) -> TopologyRecord:
    return TopologyRecord.from_parsed(load_profile(profile), parse_topology(text))
