"""Parser of `nvidia-smi topo -m` / `topo --matrix`.

The real tool separates cells with tabs; pastes expand them to spaces, drop trailing whitespace, embed the
matrix after a heading, and drivers of different eras name columns differently (`mlx5_0` vs `NIC0` plus a
NIC Legend, with or without affinity columns). Cells never contain spaces, so rows split on whitespace;
only the header has multi-word column names, which are matched by name. The matrix ends at a blank line, at
"Legend:", or at any other line once every device has its row: a capture that dropped blank lines (a log) or
was cut part-way through the legend still holds a whole matrix, and the legend only names the NICs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size

AFFINITY_COLUMNS = ("CPU Affinity", "NUMA Affinity", "GPU NUMA ID")
_CELL = re.compile(r"^(X|NV\d+|PIX|PXB|PHB|NODE|SYS|SOC|PSB|N/A)$")
_HEADER_TOKEN = re.compile(r"CPU Affinity|NUMA Affinity|GPU NUMA ID|\S+")
_GPU = re.compile(r"^GPU\d+$")
_LEGEND_NIC = re.compile(r"^\s*(NIC\d+)\s*:\s*(\S+)\s*$")


@dataclass(frozen=True)
class Topology:
    """A parsed topology matrix; cells are kept exactly as printed (``"NV18"``, ``"PIX"``, ``"X"``)."""

    gpus: list[str]
    nics: list[str]
    nic_names: dict[str, str]
    cells: dict[tuple[str, str], str]
    columns: list[str]
    cpu_affinity: dict[str, str | None] = field(default_factory=dict)
    numa_affinity: dict[str, str | None] = field(default_factory=dict)
    gpu_numa_id: dict[str, str | None] = field(default_factory=dict)

    def _resolve(self, name: str | int) -> str:
        if isinstance(name, int):
            name = f"GPU{name}"
        if name in self.gpus or name in self.nics:
            return name
        for column, device in self.nic_names.items():
            if device == name:
                return column
        raise KeyError(f"no device {name!r} in topology (GPUs {self.gpus}, NICs {self.nics})")

    def link(self, a: str | int, b: str | int) -> str:
        """The cell between two devices: GPU names, ``int`` GPU indices, NIC columns or NIC device names."""
        return self.cells[(self._resolve(a), self._resolve(b))]


def _is_header(tokens: list[str]) -> bool:
    return bool(tokens) and tokens[0] == "GPU0" and (len(tokens) == 1 or tokens[1] != "X")


def parse_topology(text: str) -> Topology:
    """Parse the matrix; raise ParseError (line number and line) on anything that is not one."""
    check_size(text, "nvidia-smi topo -m output")
    lines = text.splitlines()
    header_at = None
    for i, line in enumerate(lines):
        if _is_header(_HEADER_TOKEN.findall(line)):
            header_at = i
            break
    if header_at is None:
        first = next((i for i, ln in enumerate(lines) if ln.strip()), 0)
        raise ParseError(
            "not `nvidia-smi topo -m` output: no header line starting with GPU0",
            first + 1,
            lines[first] if lines else "",
        )
    columns = _HEADER_TOKEN.findall(lines[header_at])
    if len(set(columns)) != len(columns):
        raise ParseError("a column is named twice in the header", header_at + 1, lines[header_at][:200])
    devices = [c for c in columns if c not in AFFINITY_COLUMNS]
    device_set = set(devices)
    extra = [c for c in columns if c in AFFINITY_COLUMNS]
    if columns[: len(devices)] != devices:
        raise ParseError("device columns after affinity columns", header_at + 1, lines[header_at])
    gpus = [d for d in devices if _GPU.match(d)]
    nics = [d for d in devices if not _GPU.match(d)]
    if devices[: len(gpus)] != gpus:
        raise ParseError("GPU columns must come before NIC columns", header_at + 1, lines[header_at])

    cells: dict[tuple[str, str], str] = {}
    affinity: dict[str, dict[str, str | None]] = {c: {g: None for g in gpus} for c in AFFINITY_COLUMNS}
    seen: set[str] = set()
    i = header_at + 1
    while i < len(lines):
        line = lines[i]
        tokens = line.split()
        if not tokens or tokens[0] == "Legend:":
            break
        name = tokens[0]
        if name not in device_set and len(seen) == len(devices):
            break  # every row is in: what follows (a legend, whole or cut short, or other text) is not the matrix
        if name not in device_set:
            raise ParseError(f"row for unknown device {name!r} (columns: {', '.join(devices)})", i + 1, line)
        if name in seen:
            raise ParseError(f"second row for {name}", i + 1, line)
        row = tokens[1:]
        if len(row) < len(devices):
            raise ParseError(f"row has {len(row)} cells, expected {len(devices)}", i + 1, line)
        for col, cell in zip(devices, row, strict=False):
            if not _CELL.match(cell):
                raise ParseError(f"cell {name}/{col} {cell!r} is not a topology value", i + 1, line)
            if (col == name) != (cell == "X"):
                raise ParseError(f"self cell of {name} must be X and only it", i + 1, line)
            cells[(name, col)] = cell
        rest = row[len(devices) :]
        if len(rest) > len(extra):
            raise ParseError(f"row has {len(rest)} cells after the matrix, header names {len(extra)}", i + 1, line)
        if name in gpus:
            for col, value in zip(extra, rest, strict=False):
                affinity[col][name] = value
        seen.add(name)
        i += 1
    missing = [d for d in devices if d not in seen]
    if missing:
        line_no = min(i + 1, len(lines))
        raise ParseError(f"matrix ends without rows for {', '.join(missing)}", line_no, lines[line_no - 1])

    nic_names: dict[str, str] = {}
    in_nic_legend = False
    for line in lines[i:]:
        if line.strip() == "NIC Legend:":
            in_nic_legend = True
            continue
        m = _LEGEND_NIC.match(line) if in_nic_legend else None
        if m:
            nic_names[m.group(1)] = m.group(2)
    return Topology(
        gpus=gpus,
        nics=nics,
        nic_names=nic_names,
        cells=cells,
        columns=columns,
        cpu_affinity=affinity["CPU Affinity"],
        numa_affinity=affinity["NUMA Affinity"],
        gpu_numa_id=affinity["GPU NUMA ID"],
    )
