"""Parser of `nvidia-imex-ctl -N` (text) and `nvidia-imex-ctl -N -j` (JSON): the IMEX domain as one node sees it.

IMEX is the daemon that shares GPU memory between the nodes of a multi-node NVLink domain (an NVL72 rack's 18
trays). `-N` prints a legend, the node table (index, address, status and, from 570.1xx on, "Version: ..."), a
from/to connectivity matrix of one-letter codes and "Domain State: UP|DEGRADED|DOWN". IMEX 570.00 prints no
version column and narrower matrix cells, so rows are split on whitespace, never on columns. `-j` prints the same
as JSON, with connection states spelled out (CONNECTED); they are mapped to the matrix's codes so that both
outputs compare alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size

#: An IMEX domain is at most an NVL576's 144 trays today; 1024 bounds the matrix and node table.
MAX_NODES = 1024
MAX_LINE = 8 * MAX_NODES + 100  # a matrix row of MAX_NODES cells of up to 4 characters and their padding
#: The matrix codes of the text output's legend.
CODES = ("I", "N", "R", "D", "A", "!V!", "!M!", "C")
#: `-j` connection states -> the matrix code the text output prints for them. A state not listed is kept as
#: printed (and is not "C", so a check treats it as a connection that is not ready).
JSON_STATES = {
    "CONNECTED": "C",
    "INVALID": "I",
    "NEVER_CONNECTED": "N",
    "RECOVERING": "R",
    "DISCONNECTED": "D",
    "AUTHENTICATING": "A",
    "VERSION_MISMATCH": "!V!",
    "NODE_MAP_MISMATCH": "!M!",
}
_LEGEND = re.compile(r"^(?:[A-Z]|![A-Z]!) - \S")
_TIMESTAMP = re.compile(r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2}(?:\.\d{1,6})?$")
_NODE = re.compile(r"^Node #(\d{1,4})\s+-\s+(\S{1,255})\s+-\s+([A-Za-z_]{1,40})"
                   r"(?:\s+-\s+Version:\s*(\S{0,40}))?\s*$")
_MATRIX_HEAD = "Nodes From\\To"
_DOMAIN = re.compile(r"^Domain State:\s*([A-Za-z_]{1,40})\s*$")
_INDEX = re.compile(r"^\d{1,4}$")


@dataclass(frozen=True)
class ImexNode:
    index: int
    address: str
    status: str
    version: str | None


@dataclass(frozen=True)
class ImexStatus:
    """The domain as one node's IMEX daemon sees it; ``connections[(from, to)]`` is the matrix code ("C" when
    connected)."""

    domain_state: str
    nodes: list[ImexNode]
    connections: dict[tuple[int, int], str] = field(default_factory=dict)
    timestamp: str | None = None

    def node(self, index: int) -> ImexNode | None:
        return next((n for n in self.nodes if n.index == index), None)


def parse_imex_status(text: str) -> ImexStatus:
    check_size(text, "nvidia-imex-ctl -N output")
    if text.lstrip().startswith("{"):
        return _parse_json(text)
    return _parse_text(text)


def _parse_text(text: str) -> ImexStatus:
    nodes: list[ImexNode] = []
    seen: set[int] = set()
    connections: dict[tuple[int, int], str] = {}
    columns: list[int] | None = None
    rows: set[int] = set()
    domain: str | None = None
    timestamp: str | None = None
    for no, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE:
            raise ParseError(f"a line of {len(line)} characters is not `nvidia-imex-ctl -N` output", no, line[:200])
        stripped = line.strip()
        if not stripped or stripped in ("Connectivity Table Legend:", "Nodes:") or _LEGEND.match(stripped):
            continue
        if _TIMESTAMP.match(stripped):
            timestamp = stripped
            continue
        m = _NODE.match(stripped)
        if m:
            index = int(m.group(1))
            if index in seen:
                raise ParseError(f"node #{index} is listed twice", no, line)
            if len(nodes) >= MAX_NODES:
                raise ParseError(f"more than {MAX_NODES} nodes", no, line)
            seen.add(index)
            nodes.append(ImexNode(index, m.group(2), m.group(3), m.group(4) or None))
            continue
        if stripped.startswith(_MATRIX_HEAD):
            heads = stripped[len(_MATRIX_HEAD):].split()
            if not all(_INDEX.match(t) for t in heads) or len(heads) > MAX_NODES or len(set(heads)) != len(heads):
                raise ParseError("the matrix header must name each node once by its index", no, line[:200])
            columns = [int(t) for t in heads]
            continue
        m = _DOMAIN.match(stripped)
        if m:
            domain = m.group(1)
            continue
        row = stripped.split()
        if columns is not None and _INDEX.match(row[0]):
            source, cells = int(row[0]), row[1:]
            if source in rows or len(rows) >= MAX_NODES:
                raise ParseError(f"matrix row of node {source} repeated, or more than {MAX_NODES} rows", no,
                                 line[:200])
            rows.add(source)
            if len(cells) != len(columns):
                raise ParseError(f"matrix row of node {source} has {len(cells)} cells, the header names "
                                 f"{len(columns)} nodes", no, line[:200])
            for target, code in zip(columns, cells, strict=True):
                if code not in CODES:
                    raise ParseError(f"matrix cell {source}->{target} {code!r} is not a legend code "
                                     f"({', '.join(CODES)})", no, line[:200])
                connections[(source, target)] = code
            continue
        raise ParseError("not `nvidia-imex-ctl -N` output: expected the legend, a 'Node #N - ...' line, the "
                         "connectivity matrix or 'Domain State: ...'", no, line[:200])
    if domain is None:
        lines = text.splitlines()
        first = next((i for i, ln in enumerate(lines, 1) if ln.strip()), 1)
        raise ParseError("not `nvidia-imex-ctl -N` output: no 'Domain State:' line", first,
                         lines[first - 1][:200] if lines else "")
    return ImexStatus(domain, nodes, connections, timestamp)


def _parse_json(text: str) -> ImexStatus:
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ParseError("`nvidia-imex-ctl -N -j` output nests deeper than JSON can be read", 1, None) from None
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        shown = lines[exc.lineno - 1][:200] if 0 < exc.lineno <= len(lines) else ""
        raise ParseError(f"`nvidia-imex-ctl -N -j` output is not JSON: {exc.msg}", exc.lineno, shown) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("status"), str):
        raise ParseError("`nvidia-imex-ctl -N -j` output has no top-level \"status\" string", 1,
                         text.splitlines()[0][:200])
    raw_nodes = doc.get("nodes", {})
    if not isinstance(raw_nodes, dict) or len(raw_nodes) > MAX_NODES:
        raise ParseError(f"\"nodes\" must be an object of at most {MAX_NODES} nodes", 1, None)
    nodes: list[ImexNode] = []
    connections: dict[tuple[int, int], str] = {}
    for key, node in raw_nodes.items():
        index = _json_index(key, "nodes")
        if not isinstance(node, dict) or not isinstance(node.get("status"), str):
            raise ParseError(f"nodes.{key}: expected an object with a \"status\" string", None, None)
        host = node.get("host", "")
        version = node.get("version")
        if not isinstance(host, str) or (version is not None and not isinstance(version, str)):
            raise ParseError(f"nodes.{key}: \"host\" and \"version\" must be strings", None, None)
        nodes.append(ImexNode(index, host, node["status"], version or None))
        links = node.get("connections", {})
        if not isinstance(links, dict) or len(links) > MAX_NODES:
            raise ParseError(f"nodes.{key}.connections: expected an object of at most {MAX_NODES} peers", None,
                             None)
        for peer_key, link in links.items():
            peer = _json_index(peer_key, f"nodes.{key}.connections")
            state = link.get("status") if isinstance(link, dict) else None
            if not isinstance(state, str):
                raise ParseError(f"nodes.{key}.connections.{peer_key}: expected an object with a \"status\" "
                                 "string", None, None)
            connections[(index, peer)] = JSON_STATES.get(state.upper(), state)
    timestamp = doc.get("timestamp")
    return ImexStatus(doc["status"], sorted(nodes, key=lambda n: n.index), connections,
                      timestamp if isinstance(timestamp, str) else None)


def _json_index(key: str, where: str) -> int:
    if not _INDEX.match(key):
        raise ParseError(f"{where}: key {key[:40]!r} is not a node index", None, None)
    return int(key)
