"""Parsers of the NUMA layout: `numactl -H`, `lscpu` (text or `-J`), and the kernel's own sysfs files.

On a coherent CPU-GPU host (Grace Hopper, Grace Blackwell, an NVLink Fusion host) the GPU's memory is onlined by
the driver as a NUMA node of its own, with no CPUs: that node is what makes the memory usable by the CPU's
allocator, and its absence (driver without coherent memory, CDMM mode, a failed hot-plug) is what
test_coherent_memory looks for. So a node's CPU list may be empty, and a node's size may be 0 MB (Grace's spare
nodes for MIG) or not printed at all (lscpu never prints sizes).

`numactl -H` prints the CPU list of a node on one line; a paste may wrap it, so lines of bare CPU numbers after a
``node N cpus:`` line continue it. CPU ranges (``0-71``) are expanded with a bound on the total, so a hostile
``0-999999999`` costs nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size

MAX_LINE = 100_000  # numactl prints a 4096-CPU list on one line (about 20 KB)
#: The most CPUs a node list may name (Linux's NR_CPUS tops out at 8192 on arm64 and x86).
MAX_CPUS = 16_384
MAX_NODES = 1024  # Linux's NODES_SHIFT is at most 10
_NUMACTL_AVAILABLE = re.compile(r"^available: (\d{1,4}) nodes? \(([-0-9, ]{0,200})\)$")
_NUMACTL_CPUS = re.compile(r"^node (\d{1,4}) cpus:((?: \d{1,6})*)\s*$")
_NUMACTL_SIZE = re.compile(r"^node (\d{1,4}) (size|free): (\d{1,12}) MB$")
_NUMACTL_DIST_HEAD = re.compile(r"^node(?:\s+\d{1,4})+$")
_NUMACTL_DIST_ROW = re.compile(r"^\d{1,4}:(?:\s+\d{1,4})+$")
_CONTINUATION = re.compile(r"^\d{1,6}(?: \d{1,6})*$")
_LSCPU_NODE = re.compile(r"^NUMA node(\d{1,4}) CPU\(s\):\s*(.*)$")
_CPU_LIST = re.compile(r"^\d{1,6}(?:-\d{1,6})?(?:,\d{1,6}(?:-\d{1,6})?)*$")
_SYSFS = re.compile(r"^/sys/devices/system/node/node(\d{1,4})/(cpulist|meminfo):(.*)$")
_MEMTOTAL = re.compile(r"^Node (\d{1,4}) MemTotal:\s+(\d{1,15}) kB$")
NO_NUMA = "No NUMA available on this system"


@dataclass(frozen=True)
class NumaNode:
    """One NUMA node: its CPUs (empty for a memory-only node) and its size in MB (None where the tool does not
    say, as lscpu does not)."""

    id: int
    cpus: list[int] = field(default_factory=list)
    memory_mb: int | None = None


def cpu_list(text: str, what: str = "CPU list", line_no: int | None = None, line: str | None = None) -> list[int]:
    """``0-3,8,10-11`` -> [0, 1, 2, 3, 8, 10, 11]; "" -> []. At most MAX_CPUS CPUs, else ParseError."""
    text = text.strip()
    if not text:
        return []
    if not _CPU_LIST.match(text):
        raise ParseError(f"{what}: {text[:60]!r} is not a CPU list such as 0-71,144-215", line_no, line)
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        lo, hi = int(first), int(last or first)
        if hi < lo or len(out) + hi - lo + 1 > MAX_CPUS:
            raise ParseError(f"{what}: {part!r} is a range backwards or past {MAX_CPUS} CPUs", line_no, line)
        out.extend(range(lo, hi + 1))
    return out


def parse_numa(text: str) -> list[NumaNode]:
    """The NUMA nodes `numactl -H`, `lscpu` or `lscpu -J` shows, by node id."""
    check_size(text, "numactl -H / lscpu output")
    stripped = text.strip()
    if stripped.startswith("{"):
        return _parse_lscpu_json(text)
    if stripped == NO_NUMA:
        return []
    lines = text.splitlines()
    for line in lines:
        if line.startswith(("available:", "node ")):
            return _parse_numactl(lines)
        if line.startswith("NUMA node"):
            return _parse_lscpu(lines)
    first = next((i for i, ln in enumerate(lines, 1) if ln.strip()), 1)
    raise ParseError("not `numactl -H` or `lscpu` output: no 'available:', 'node N cpus:' or 'NUMA node' line",
                     first, lines[first - 1][:200] if lines else "")


def _too_long(no: int, line: str, tool: str) -> None:
    if len(line) > MAX_LINE:
        raise ParseError(f"a line of {len(line)} characters is not {tool} output", no, line[:200])


def _parse_numactl(lines: list[str]) -> list[NumaNode]:
    cpus: dict[int, list[int]] = {}
    size: dict[int, int] = {}
    declared: int | None = None
    continuing: int | None = None  # the node whose CPU list a wrapped line continues
    in_distances = False
    for no, line in enumerate(lines, start=1):
        _too_long(no, line, "`numactl -H`")
        stripped = line.strip()
        if not stripped:
            continue
        m = _NUMACTL_AVAILABLE.match(stripped)
        if m:
            declared = int(m.group(1))
            continue
        m = _NUMACTL_CPUS.match(stripped)
        if m:
            node = int(m.group(1))
            if node in cpus:
                raise ParseError(f"node {node} cpus listed twice", no, line[:200])
            if len(cpus) >= MAX_NODES:
                raise ParseError(f"more than {MAX_NODES} nodes", no, line[:200])
            cpus[node] = _numbers(m.group(2), [], no, line)
            continuing = node
            continue
        if continuing is not None and _CONTINUATION.match(stripped):
            cpus[continuing] = _numbers(stripped, cpus[continuing], no, line)  # a wrapped CPU list, as pasted
            continue
        continuing = None
        m = _NUMACTL_SIZE.match(stripped)
        if m:
            if m.group(2) == "size":
                size[int(m.group(1))] = int(m.group(3))
            continue
        if stripped in ("node distances:", "No distance information available."):
            in_distances = True
            continue
        if in_distances and (_NUMACTL_DIST_HEAD.match(stripped) or _NUMACTL_DIST_ROW.match(stripped)):
            continue
        raise ParseError("not `numactl -H` output: expected 'available:', 'node N cpus|size|free:' or the "
                         "distance table", no, line[:200])
    ids = sorted(set(cpus) | set(size))
    if not ids:
        raise ParseError("`numactl -H` output names no node", 1, lines[0][:200] if lines else "")
    if declared is not None and declared != len(ids):
        raise ParseError(f"'available: {declared} nodes' but {len(ids)} nodes are listed", 1, lines[0][:200])
    return [NumaNode(i, cpus.get(i, []), size.get(i)) for i in ids]


def _numbers(text: str, into: list[int], no: int, line: str) -> list[int]:
    tokens = text.split()
    if len(into) + len(tokens) > MAX_CPUS:
        raise ParseError(f"a node with more than {MAX_CPUS} CPUs", no, line[:200])
    return into + [int(t) for t in tokens]


def _parse_lscpu(lines: list[str]) -> list[NumaNode]:
    nodes: dict[int, list[int]] = {}
    for no, line in enumerate(lines, start=1):
        _too_long(no, line, "`lscpu`")
        m = _LSCPU_NODE.match(line.strip())
        if m:
            node = int(m.group(1))
            if node in nodes or len(nodes) >= MAX_NODES:
                raise ParseError(f"NUMA node{node} listed twice, or more than {MAX_NODES} nodes", no, line[:200])
            nodes[node] = cpu_list(m.group(2), f"NUMA node{node} CPU(s)", no, line[:200])
            continue
        if line.strip() and ":" not in line:
            raise ParseError("not `lscpu` output: expected 'Field: value'", no, line[:200])
    return [NumaNode(i, nodes[i], None) for i in sorted(nodes)]


def _parse_lscpu_json(text: str) -> list[NumaNode]:
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ParseError("`lscpu -J` output nests deeper than JSON can be read", 1, None) from None
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        shown = lines[exc.lineno - 1][:200] if 0 < exc.lineno <= len(lines) else ""
        raise ParseError(f"`lscpu -J` output is not JSON: {exc.msg}", exc.lineno, shown) from None
    items = doc.get("lscpu") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ParseError("`lscpu -J` output has no \"lscpu\" list", 1, text.splitlines()[0][:200])
    nodes: dict[int, list[int]] = {}
    pending = list(items)  # util-linux 2.38+ nests fields under "children": walked without recursion
    while pending:
        item = pending.pop()
        if not isinstance(item, dict) or not isinstance(item.get("field"), str):
            raise ParseError("`lscpu -J`: every entry is an object with a \"field\" string", None, None)
        children = item.get("children", [])
        if not isinstance(children, list):
            raise ParseError(f"`lscpu -J`: {item['field'][:60]!r} has \"children\" that are not a list", None, None)
        pending.extend(children)
        m = _LSCPU_NODE.match(item["field"].strip())
        if m:
            data = item.get("data")
            if data is not None and not isinstance(data, str):
                raise ParseError(f"`lscpu -J`: {item['field']!r} data is not a string", None, None)
            node = int(m.group(1))
            if node in nodes or len(nodes) >= MAX_NODES:
                raise ParseError(f"`lscpu -J`: NUMA node{node} listed twice, or more than {MAX_NODES}", None, None)
            nodes[node] = cpu_list(data or "", item["field"])
    if not nodes:
        raise ParseError("`lscpu -J` output has no 'NUMA nodeN CPU(s):' field", None, None)
    return [NumaNode(i, nodes[i], None) for i in sorted(nodes)]


def parse_sysfs_numa(text: str) -> list[NumaNode]:
    """The kernel's view, for hosts without numactl (the RISC-V guests): `grep -H . .../nodeN/cpulist` and
    `grep -H MemTotal .../nodeN/meminfo` output, one line per file (grep skips a memory-only node's empty
    cpulist; its meminfo line still names it)."""
    check_size(text, "sysfs NUMA listing")
    cpus: dict[int, list[int]] = {}
    size: dict[int, int] = {}
    for no, line in enumerate(text.splitlines(), start=1):
        _too_long(no, line, "the sysfs NUMA listing")
        if not line.strip():
            continue
        m = _SYSFS.match(line.strip())
        if not m:
            raise ParseError("expected '/sys/devices/system/node/nodeN/cpulist:...' or '.../meminfo:...'", no,
                             line[:200])
        node, kind, value = int(m.group(1)), m.group(2), m.group(3).strip()
        if len(set(cpus) | set(size) | {node}) > MAX_NODES:
            raise ParseError(f"more than {MAX_NODES} nodes", no, line[:200])
        if kind == "cpulist":
            cpus[node] = cpu_list(value, f"node{node} cpulist", no, line[:200])
            continue
        mem = _MEMTOTAL.match(value)
        if not mem or int(mem.group(1)) != node:
            raise ParseError(f"node{node} meminfo: expected 'Node {node} MemTotal: <n> kB'", no, line[:200])
        size[node] = int(mem.group(2)) // 1024
    ids = sorted(set(cpus) | set(size))
    if not ids:
        raise ParseError("the sysfs NUMA listing names no node", 1, "")
    return [NumaNode(i, cpus.get(i, []), size.get(i)) for i in ids]
