"""Loading YAML that people write (rigs.yaml, baselines, profiles) without trusting it.

PyYAML's ``safe_load`` refuses arbitrary objects but still accepts what hurts a config file: a duplicate key
silently wins (a reviewer sees one value, hilt uses the other), a 2 KB alias bomb expands to billions of
nodes for whatever walks the result, bytes that are not UTF-8 or a thousand nested brackets end in a
traceback. Every such file is refused here with one line, ``FILE:LINE: problem``, and the composed node
tree is kept so that callers can name the line of any field in their own errors (``YamlDocument.line``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hilt.errors import ConfigError

#: nodes the document may expand to, aliases followed: far above any real inventory (a 1,000-node rack is
#: about 40,000), far below what makes a walk over the result slow
MAX_NODES = 200_000
#: alias uses (``*name``) in one document; real files use a handful for shared BMC settings
MAX_ALIASES = 1_000
#: nesting depth of collections; PyYAML recurses per level and would hit Python's recursion limit
MAX_DEPTH = 64
#: bytes read from a file; a rigs file or a baseline is kilobytes
MAX_BYTES = 16 * 1024 * 1024

_MERGE = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    """Raised from inside the composer; turned into a ConfigError with the file name outside."""

    def __init__(self, line: int, problem: str):
        super().__init__(problem)
        self.line = line
        self.problem = problem


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and depth while composing, before anything is expanded."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                line = self.peek_event().start_mark.line + 1
                raise _Refused(line, f"more than {MAX_ALIASES} aliases (*name): refused as a possible alias bomb")
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@dataclass(frozen=True)
class YamlDocument:
    """A loaded document: its data, and where each of its fields was written."""

    data: Any
    source: str
    root: yaml.Node | None

    def line(self, path: Sequence[Any]) -> int | None:
        """1-based line of the deepest prefix of ``path`` (keys and list indices) that the file holds.

        For a mapping key the line is the key's own line, which is where a person looks for the field.
        The walk follows one path, so its cost is the depth, whatever aliases the file uses.
        """
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in path:
            found = _child(node, part)
            if found is None:
                break
            line, node = found
        return line


def _child(node: yaml.Node, part: Any) -> tuple[int, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        # construction flattens merge keys (``<<: *base``) into the mapping, ahead of its own keys: the last
        # match is the one that won
        merged, found = [], None
        for key, value in node.value:
            if key.tag == _MERGE:
                merged.append(value)
            elif isinstance(key, yaml.ScalarNode) and key.value == str(part):
                found = key.start_mark.line + 1, value
        if found is not None:
            return found
        for value in merged:
            for source in value.value if isinstance(value, yaml.SequenceNode) else [value]:
                found = _child(source, part)
                if found is not None:
                    return found
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None


def decode(raw: bytes, source: str) -> str:
    """UTF-8 text of a file, or a ConfigError naming the line, column and byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = raw[: exc.start]
        line = head.count(b"\n") + 1
        column = exc.start - (head.rfind(b"\n") + 1) + 1
        raise ConfigError(f"{source}:{line}:{column}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start}); save the file as UTF-8") from None


def _check(root: yaml.Node, source: str) -> None:
    """Duplicate keys and the expanded size, each node visited once (aliases share nodes)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a recursive alias (&a [*a]) counts once instead of looping
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE:
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise ConfigError(f"{source}:{line}: duplicate key {key.value!r} (first at line "
                                          f"{seen[key.value]}); remove one of them")
                    seen[key.value] = line
                total += size(key) + size(value)
                if total > MAX_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > MAX_NODES:
                    break
        sizes[id(node)] = total
        return total

    if size(root) > MAX_NODES:
        raise ConfigError(f"{source}:{root.start_mark.line + 1}: expands to more than {MAX_NODES} nodes "
                          "through aliases: refused as a possible alias bomb")


def load(content: str | bytes, source: str) -> YamlDocument:
    """Parse one YAML document safely; every problem is a ConfigError ``SOURCE:LINE: problem``."""
    text = decode(content, source) if isinstance(content, bytes) else content
    loader: _BoundedLoader | None = None
    try:
        try:
            loader = _BoundedLoader(text)  # the reader checks the characters here
            root = loader.get_single_node()
        except _Refused as exc:
            raise ConfigError(f"{source}:{exc.line}: {exc.problem}") from None
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            code = ord(exc.character) if isinstance(exc.character, str) else exc.character
            raise ConfigError(f"{source}:{line}: character {code:#06x} is not allowed in YAML (control "
                              "characters other than tab and newline)") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else "?"
            raise ConfigError(f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
        if root is None:
            return YamlDocument(None, source, None)
        _check(root, source)
        try:
            data = loader.construct_document(root)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else "?"
            raise ConfigError(f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
        except RecursionError:
            raise ConfigError(f"{source}: nested too deep") from None
    finally:
        if loader is not None:
            loader.dispose()
    return YamlDocument(data, source, root)


def load_file(path: str | Path) -> YamlDocument:
    """Read and parse a YAML file; an unreadable path (missing, a directory, too big) is a ConfigError."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MiB; not a config file")
    return load(raw, str(path))


def safe_load(content: str | bytes, source: str) -> Any:  # noqa: ANN401 - YAML is any shape
    """The data only, for callers that need no line numbers."""
    return load(content, source).data
