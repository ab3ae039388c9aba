"""Parser of `nvidia-smi -q` (text) and `nvidia-smi -q -x` (XML): per GPU, its Fabric, C2C Mode and Addressing Mode.

These are the facts a coherent, multi-node fabric rests on: the fabric manager's training state and health per
GPU, the clique and ClusterUUID that say which NVLink domain the GPU joined, whether NVLink-C2C is on and how
the GPU addresses host memory (ATS on Grace). The text layout moves between drivers: keys are padded to a
column that is 42 characters wide up to driver 570 and 55 from 580 on, and the Fabric Health block grows from one
row (Bandwidth, 550) to seven (Summary, route recovery, ...). So the text is read by indentation and by
" : " (never by column), and Health rows are kept as printed, whatever their names.

The XML is read with xml.etree over expat (>= 2.4.1 refuses entity amplification); a document that declares
entities or carries an internal DTD subset is refused before it is parsed, so no entity is ever expanded.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size, is_int, to_int
from hilt.fabric.nvlink import ELISION_TOKENS

#: `nvidia-smi -q` lines are under 200 characters; a key column of 55 plus a long value fits in 1000.
MAX_LINE = 1000
#: Deepest nesting of `-q` sections (Clocks Event Reasons > HW Slowdown > ... is 4); 16 bounds the path stack.
MAX_DEPTH = 16
_GPU_HEADER = re.compile(r"^GPU ([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*$")
_BANNER = re.compile(r"^=+\s*NVSMI LOG\s*=+$")
_KEY = re.compile(r"^[A-Za-z0-9(][^:]{0,200}$")
#: XML health tags -> the row names the text output prints (the contract keeps rows "as printed").
HEALTH_ROWS = {
    "summary": "Summary",
    "bandwidth": "Bandwidth",
    "route_recovery_in_progress": "Route Recovery in progress",
    "route_unhealthy": "Route Unhealthy",
    "access_timeout_recovery": "Access Timeout Recovery",
    "incorrect_configuration": "Incorrect Configuration",
    "partition_assigned": "Partition Assigned",
}
_NOT_AVAILABLE = ("N/A", "")
_PROLOG = 4096


@dataclass(frozen=True)
class FabricInfo:
    """A GPU's Fabric section. ``clique_id`` and ``cluster_uuid`` are None where printed N/A; ``state`` and
    ``status`` are as printed ("Completed", "In Progress", "N/A", ...); ``health`` row -> value as printed."""

    state: str | None
    status: str | None
    clique_id: int | None
    cluster_uuid: str | None
    health: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuQuery:
    """One GPU of `nvidia-smi -q`; a field is None where the output does not print it (older drivers, pastes of
    one section)."""

    pci_bus_id: str | None
    product: str | None
    uuid: str | None
    fabric: FabricInfo | None
    c2c_mode: str | None
    addressing_mode: str | None
    memory_total_mib: int | None = None
    """FB Memory Usage / Total in MiB (GPU Feature Discovery's ``nvidia.com/gpu.memory``); None where not printed."""

    @property
    def clique(self) -> str | None:
        """``<ClusterUUID>.<CliqueId>``, as GPU Feature Discovery labels it; None unless the fabric shows both."""
        f = self.fabric
        return f"{f.cluster_uuid}.{f.clique_id}" if f and f.cluster_uuid and f.clique_id is not None else None


def node_clique(gpus: list[GpuQuery]) -> str | None:
    """The node's clique as GPU Feature Discovery derives it: one ClusterUUID and CliqueId over every GPU that
    shows one; None when none does or they differ (GFD labels no clique then)."""
    cliques = {g.clique for g in gpus if g.clique is not None}
    return cliques.pop() if len(cliques) == 1 else None


def _mib(value: str | None) -> int | None:
    match = re.fullmatch(r"(\d{1,9})\s*MiB", (value or "").strip())
    return int(match.group(1)) if match else None


def parse_nvidia_smi_q(text: str) -> list[GpuQuery]:
    """Every GPU of `nvidia-smi -q` or `nvidia-smi -q -x`, in the order printed."""
    check_size(text, "nvidia-smi -q output")
    if text.lstrip().startswith("<"):
        return _parse_xml(text)
    return _parse_text(text)


# ------------------------------------------------------------------------------------------------ text


class _Block:
    """The key/value pairs of one GPU, keyed by their section path ("Fabric", "Health", "Summary")."""

    def __init__(self, bus_id: str | None, line_no: int):
        self.bus_id = bus_id
        self.line_no = line_no
        self.values: dict[tuple[str, ...], tuple[str, int, str]] = {}
        self.sections: set[tuple[str, ...]] = set()
        self.order: list[tuple[str, ...]] = []


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _parse_text(text: str) -> list[GpuQuery]:
    blocks: list[_Block] = []
    current: _Block | None = None
    stack: list[tuple[int, str]] = []  # (indent, section name) of the open sections
    for no, raw in enumerate(text.splitlines(), start=1):
        if len(raw) > MAX_LINE:
            raise ParseError(f"a line of {len(raw)} characters is not `nvidia-smi -q` output "
                             f"(its lines are under {MAX_LINE})", no, raw[:200])
        line = raw.expandtabs(4).rstrip()
        stripped = line.strip()
        if not stripped or stripped in ELISION_TOKENS or _BANNER.match(stripped):
            continue
        indent = _indent(line)
        header = _GPU_HEADER.match(line)
        if header:
            current = _Block(header.group(1), no)
            blocks.append(current)
            stack = []
            continue
        key, sep, value = stripped.partition(" :")
        key = key.strip()
        if not _KEY.match(key):
            raise ParseError("not `nvidia-smi -q` output: expected 'Key : value' or a section name", no, raw[:200])
        if indent == 0 and current is None:
            if not sep:
                raise ParseError("not `nvidia-smi -q` output: expected 'Key : value' before the first GPU", no,
                                 raw[:200])
            continue  # the log's own lines: Timestamp, Driver Version, CUDA Version, Attached GPUs
        if indent == 0:
            raise ParseError("not `nvidia-smi -q` output: an unindented line inside a GPU block", no, raw[:200])
        if current is None:  # a pasted excerpt of one GPU's sections, without its "GPU <bus id>" line
            current = _Block(None, no)
            blocks.append(current)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = tuple(name for _, name in stack) + (key,)
        if sep:
            current.values[path] = (value.strip(), no, raw)
            current.order.append(path)
        else:
            if len(stack) >= MAX_DEPTH:
                raise ParseError(f"sections nested deeper than {MAX_DEPTH}", no, raw[:200])
            stack.append((indent, key))
            current.sections.add(path)
    queries = [_gpu_from_text(block) for block in blocks]
    if not any(_says_anything(q) for q in queries):
        first = next((i for i, ln in enumerate(text.splitlines(), 1) if ln.strip()), 1)
        lines = text.splitlines()
        raise ParseError("not `nvidia-smi -q` output: no GPU block (no 'GPU <bus id>' line, Product Name, GPU UUID "
                         "or Fabric section)", first, lines[first - 1][:200] if lines else "")
    return queries


def _says_anything(q: GpuQuery) -> bool:
    return any(v is not None for v in (q.pci_bus_id, q.product, q.uuid, q.fabric, q.c2c_mode, q.addressing_mode))


def _value(block: _Block, *path: str) -> str | None:
    found = block.values.get(path)
    return found[0] if found is not None else None


def _gpu_from_text(block: _Block) -> GpuQuery:
    fabric = None
    if ("Fabric",) in block.sections:
        health = {path[2]: block.values[path][0] for path in block.order
                  if len(path) == 3 and path[:2] == ("Fabric", "Health")}
        clique = block.values.get(("Fabric", "CliqueId"))
        fabric = FabricInfo(
            state=_value(block, "Fabric", "State"),
            status=_value(block, "Fabric", "Status"),
            clique_id=_clique(clique[0], clique[1], clique[2]) if clique else None,
            cluster_uuid=_uuid(_value(block, "Fabric", "ClusterUUID")),
            health=health,
        )
    return GpuQuery(
        pci_bus_id=block.bus_id or _value(block, "PCI", "Bus Id"),
        product=_value(block, "Product Name"),
        uuid=_value(block, "GPU UUID"),
        fabric=fabric,
        c2c_mode=_value(block, "GPU C2C Mode"),
        addressing_mode=_value(block, "Addressing Mode"),
        memory_total_mib=_mib(_value(block, "FB Memory Usage", "Total")),
    )


def _clique(value: str, line_no: int | None, line: str | None) -> int | None:
    if value in _NOT_AVAILABLE:
        return None
    if not is_int(value):
        raise ParseError(f"CliqueId {value[:40]!r} is neither a number nor N/A", line_no, line)
    return to_int(value, "CliqueId", line_no, line)


def _uuid(value: str | None) -> str | None:
    return None if value is None or value in _NOT_AVAILABLE else value


# ------------------------------------------------------------------------------------------------- XML


def _parse_xml(text: str) -> list[GpuQuery]:
    prolog = text[:_PROLOG]  # a DOCTYPE comes before the root element: its first bytes, searched once
    if "<!ENTITY" in text or re.search(r"<!DOCTYPE[^>\[]*\[", prolog):
        raise ParseError("`nvidia-smi -q -x` output declares entities or an internal DTD subset; nvidia-smi "
                         "never does, and hilt expands no entity", 1, text.lstrip().splitlines()[0][:200])
    parser = ET.XMLParser()
    try:
        parser.feed(text)
        root = parser.close()
    except ET.ParseError as exc:
        line_no = exc.position[0] if getattr(exc, "position", None) else None
        lines = text.splitlines()
        shown = lines[line_no - 1][:200] if line_no and 0 < line_no <= len(lines) else None
        raise ParseError(f"`nvidia-smi -q -x` output is not well-formed XML: {exc}", line_no, shown) from None
    if root.tag != "nvidia_smi_log":
        raise ParseError(f"`nvidia-smi -q -x` output has root <{root.tag[:40]}>, expected <nvidia_smi_log>", 1,
                         text.lstrip().splitlines()[0][:200])
    return [_gpu_from_xml(gpu) for gpu in root.findall("gpu")]


def _text(element: ET.Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip()


def _gpu_from_xml(gpu: ET.Element) -> GpuQuery:
    fabric = None
    node = gpu.find("fabric")
    if node is not None:
        health = {}
        health_node = node.find("health")
        for row in list(health_node) if health_node is not None else []:
            name = HEALTH_ROWS.get(row.tag) or row.tag.replace("_", " ").capitalize()
            health[name] = _text(row) or ""
        clique = _text(node.find("cliqueId"))
        fabric = FabricInfo(
            state=_text(node.find("state")),
            status=_text(node.find("status")),
            clique_id=_clique(clique, None, None) if clique is not None else None,
            cluster_uuid=_uuid(_text(node.find("clusterUuid"))),
            health=health,
        )
    return GpuQuery(
        pci_bus_id=gpu.get("id") or _text(gpu.find("pci/pci_bus_id")),
        product=_text(gpu.find("product_name")),
        uuid=_text(gpu.find("uuid")),
        fabric=fabric,
        c2c_mode=_text(gpu.find("c2c_mode")),
        addressing_mode=_text(gpu.find("addressing_mode")),
        memory_total_mib=_mib(_text(gpu.find("fb_memory_usage/total"))),
    )
