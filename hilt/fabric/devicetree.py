"""Parser of a device tree as the kernel exposes it: `/sys/firmware/devicetree/base` (`/proc/device-tree`).

There, each node is a directory and each property a file holding raw bytes: NUL-terminated strings
(several in a row make a string list), big-endian u32 cells, or nothing (a boolean property). The parser is a
pure function over {relative_path: bytes}, so a dump read over SSH and a tree written by the simulator
are read the same way. RISC-V hosts with NVLink Fusion publish their NVLink nodes under `firmware/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hilt.errors import ParseError
from hilt.fabric.bounds import MAX_TEXT

#: Linux's PATH_MAX, and a depth no firmware tree comes near; they bound the work a hostile dump can ask for.
MAX_PATH = 4096
MAX_DEPTH = 64
MAX_FILES = 100_000

PropertyValue = str | list[str] | list[int] | bool | bytes


@dataclass(frozen=True)
class DtNode:
    path: str  # relative to the tree's base, "" for the root
    name: str
    properties: dict[str, PropertyValue] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)

    @property
    def compatible(self) -> list[str]:
        value = self.properties.get("compatible")
        if isinstance(value, str):
            return [value]
        return list(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else []


@dataclass(frozen=True)
class DeviceTree:
    nodes: dict[str, DtNode]

    def node(self, path: str) -> DtNode | None:
        return self.nodes.get(path.strip("/"))

    def children(self, path: str) -> list[DtNode]:
        parent = self.nodes.get(path.strip("/"))
        return [self.nodes[c] for c in parent.children] if parent else []


def _printable(chunk: bytes) -> bool:
    return bool(chunk) and all(32 <= b < 127 for b in chunk)


def decode_property(raw: bytes) -> PropertyValue:
    """Strings when every NUL-separated chunk is printable text, u32 cells when 4-aligned, else raw bytes."""
    if raw == b"":
        return True
    if raw.endswith(b"\0"):
        chunks = raw[:-1].split(b"\0")
        if all(_printable(c) for c in chunks):
            strings = [c.decode("ascii") for c in chunks]
            return strings[0] if len(strings) == 1 else strings
    if len(raw) % 4 == 0:
        return [int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw), 4)]
    return raw


def encode_property(value: PropertyValue) -> bytes:
    """The inverse of decode_property, for writing trees (the simulator, tests)."""
    if value is True:
        return b""
    if isinstance(value, str):
        return value.encode("ascii") + b"\0"
    if isinstance(value, bytes):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return b"".join(v.encode("ascii") + b"\0" for v in value)
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return b"".join(int(v).to_bytes(4, "big") for v in value)
    raise ValueError(f"cannot encode device-tree property value {value!r}")


def parse_devicetree(files: dict[str, bytes]) -> DeviceTree:
    """Build nodes from {relative_path: bytes}; a path's last part is a property, the rest its node."""
    if len(files) > MAX_FILES:
        raise ParseError(f"device tree with {len(files)} files; a real one has far fewer than {MAX_FILES}")
    total = 0
    nodes: dict[str, DtNode] = {"": DtNode("", "", {}, [])}

    def ensure(path: str) -> DtNode:
        """The node at `path`, creating missing ancestors (iteratively: depth is bounded, not the stack)."""
        missing = []
        while path not in nodes:
            missing.append(path)
            path = path.rpartition("/")[0]
        for p in reversed(missing):
            nodes[p] = DtNode(p, p.rpartition("/")[2], {}, [])
            nodes[p.rpartition("/")[0]].children.append(p)
        return nodes[missing[0]] if missing else nodes[path]

    for no, (raw_path, data) in enumerate(sorted(files.items()), start=1):
        path = raw_path.strip("/")
        if len(path) > MAX_PATH or path.count("/") >= MAX_DEPTH:
            raise ParseError(f"device-tree path longer than {MAX_PATH} characters or {MAX_DEPTH} levels", no,
                             raw_path[:200])
        if not path or any(part in ("", ".", "..") for part in path.split("/")):
            raise ParseError("device-tree file path must be relative, without '.' or '..'", no, raw_path[:200])
        if not isinstance(data, bytes | bytearray):
            raise ParseError("device-tree property must be bytes", no, raw_path[:200])
        total += len(data)
        if total > MAX_TEXT:
            raise ParseError(f"device tree larger than {MAX_TEXT} bytes", no, raw_path[:200])
        node_path, _, prop = path.rpartition("/")
        ensure(node_path).properties[prop] = decode_property(bytes(data))
    for node in nodes.values():
        node.children.sort()
    return DeviceTree(nodes)
