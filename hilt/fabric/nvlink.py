"""Parsers of `nvidia-smi nvlink -s` (status), `-e` (error counters) and `-c` (capabilities).

All three share one shape: a `GPU N: name (UUID: ...)` line, then indented `Link N...` lines. People who
paste them insert blank lines and elisions (`...`, `[...]`); those are skipped. Anything else is not the
tool's output and raises ParseError rather than yielding a half-parsed fabric.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size

# Numbers are bounded in length: a GPU or link index has at most 4 digits, a counter at most 24 (2**64 has 20).
_GPU_HEAD = re.compile(r"^GPU (\d{1,4}): ")
#: nvidia-smi prints GPU names of a few dozen characters; 1000 leaves room for padding and pasted prefixes.
MAX_LINE = 1000
#: Lines people put in pasted output where they cut some out; skipped by the parsers of these block formats.
ELISION_TOKENS = ("...", "[...]", "…")
_STATUS = re.compile(r"^\s+Link (\d{1,4}): (?:<inactive>|(\d{1,24}(?:\.\d{1,24})?) GB/s)\s*$")
_ERROR = re.compile(r"^\s+Link (\d{1,4}): ([A-Za-z][A-Za-z ]{0,80}?): (\d{1,24}|N/A)\s*$")
_CAPABILITY = re.compile(r"^\s+Link (\d{1,4}), ([^:]{1,200}): (true|false)\s*$")

#: Counter names as drivers of different eras print them, mapped to one stable key.
ERROR_COUNTER_KEYS = {
    "replay errors": "replay",
    "recovery errors": "recovery",
    "crc errors": "crc_flit",
    "crc flit errors": "crc_flit",
    "flit crc errors": "crc_flit",
    "crc data errors": "crc_data",
    "data crc errors": "crc_data",
}


@dataclass(frozen=True)
class LinkStatus:
    index: int
    active: bool
    speed_gbps: float | None


@dataclass(frozen=True)
class GpuLinks:
    """One GPU's block of `nvlink -s`; ``links`` is indexed by position, each carries its own ``index``."""

    index: int
    name: str
    uuid: str | None
    links: list[LinkStatus]

    def link(self, index: int) -> LinkStatus | None:
        return next((lk for lk in self.links if lk.index == index), None)


@dataclass(frozen=True)
class LinkErrors:
    index: int
    counters: dict[str, int | None] = field(default_factory=dict)

    @property
    def replay(self) -> int:
        return self.counters.get("replay") or 0

    @property
    def recovery(self) -> int:
        return self.counters.get("recovery") or 0

    @property
    def crc(self) -> int:
        """CRC flit plus CRC data errors: what DCGM's threshold is measured against."""
        return (self.counters.get("crc_flit") or 0) + (self.counters.get("crc_data") or 0)


@dataclass(frozen=True)
class GpuErrors:
    index: int
    name: str
    uuid: str | None
    links: list[LinkErrors]

    def link(self, index: int) -> LinkErrors | None:
        return next((lk for lk in self.links if lk.index == index), None)


@dataclass(frozen=True)
class GpuCapabilities:
    index: int
    name: str
    uuid: str | None
    links: dict[int, dict[str, bool]]


def gpu_heading(line: str) -> tuple[int, str, str | None] | None:
    """`GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)` -> (0, name, uuid); string operations, so linear in the
    line (the former regex `(.+?)(?: \\(UUID: ...\\))?\\s*$` took 25 s on an 80k-character line)."""
    m = _GPU_HEAD.match(line)
    if not m:
        return None
    rest = line[m.end():].rstrip()
    uuid: str | None = None
    if rest.endswith(")"):
        head, sep, tail = rest.rpartition(" (UUID: ")
        if sep and tail[:-1] and not any(ch.isspace() for ch in tail[:-1]):
            rest, uuid = head, tail[:-1]
    name = rest.strip()
    if not name:
        return None
    return int(m.group(1)), name, uuid


def _blocks(text: str, on_link: Callable[[int, str, int], None], what: str) -> list[tuple[int, str, str | None]]:
    """Walk GPU lines and link lines; ``on_link(gpu_position, line, line_no)`` handles a link line."""
    check_size(text, f"nvidia-smi nvlink {what} output")
    gpus: list[tuple[int, str, str | None]] = []
    for no, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE:
            raise ParseError(f"a line of {len(line)} characters is not `nvidia-smi nvlink {what}` output "
                             f"(its lines are under {MAX_LINE})", no, line[:200])
        if not line.strip() or line.strip() in ELISION_TOKENS:
            continue
        gpu = gpu_heading(line)
        if gpu:
            gpus.append(gpu)
            continue
        if not gpus:
            raise ParseError(f"not `nvidia-smi nvlink {what}` output: expected a 'GPU N: ...' line", no, line)
        on_link(len(gpus) - 1, line, no)
    if not gpus:
        raise ParseError(f"empty `nvidia-smi nvlink {what}` output: no GPU lines", 1, "")
    return gpus


def parse_nvlink_status(text: str) -> list[GpuLinks]:
    """Parse `nvidia-smi nvlink -s`; speeds in GB/s as printed, None for `<inactive>` links."""
    links: dict[int, list[LinkStatus]] = {}

    def on_link(pos: int, line: str, no: int) -> None:
        m = _STATUS.match(line)
        if not m:
            raise ParseError("expected 'Link N: <speed> GB/s' or 'Link N: <inactive>'", no, line)
        speed = float(m.group(2)) if m.group(2) else None
        links.setdefault(pos, []).append(LinkStatus(int(m.group(1)), speed is not None, speed))

    gpus = _blocks(text, on_link, "-s")
    return [GpuLinks(i, name, uuid, links.get(pos, [])) for pos, (i, name, uuid) in enumerate(gpus)]


def parse_nvlink_errors(text: str) -> list[GpuErrors]:
    """Parse `nvidia-smi nvlink -e`; counters keyed replay/recovery/crc_flit/crc_data (others lower-cased)."""
    links: dict[int, dict[int, dict[str, int | None]]] = {}

    def on_link(pos: int, line: str, no: int) -> None:
        m = _ERROR.match(line)
        if not m:
            raise ParseError("expected 'Link N: <Counter> Errors: <count>'", no, line)
        name = m.group(2).strip().lower()
        key = ERROR_COUNTER_KEYS.get(name, name.replace(" ", "_"))
        value = None if m.group(3) == "N/A" else int(m.group(3))
        links.setdefault(pos, {}).setdefault(int(m.group(1)), {})[key] = value

    gpus = _blocks(text, on_link, "-e")
    return [
        GpuErrors(i, name, uuid, [LinkErrors(k, c) for k, c in sorted(links.get(pos, {}).items())])
        for pos, (i, name, uuid) in enumerate(gpus)
    ]


def parse_nvlink_capabilities(text: str) -> list[GpuCapabilities]:
    """Parse `nvidia-smi nvlink -c`: per link, capability text (as printed) -> bool."""
    links: dict[int, dict[int, dict[str, bool]]] = {}

    def on_link(pos: int, line: str, no: int) -> None:
        m = _CAPABILITY.match(line)
        if not m:
            raise ParseError("expected 'Link N, <capability>: true|false'", no, line)
        links.setdefault(pos, {}).setdefault(int(m.group(1)), {})[m.group(2).strip()] = m.group(3) == "true"

    gpus = _blocks(text, on_link, "-c")
    return [GpuCapabilities(i, name, uuid, links.get(pos, {})) for pos, (i, name, uuid) in enumerate(gpus)]


_THROUGHPUT = re.compile(r"^\s+Link (\d{1,4}): Data (Tx|Rx): (\d{1,24}) KiB\s*$")


@dataclass(frozen=True)
class GpuThroughput:
    """`nvidia-smi nvlink -gt d`: data counters per link, in KiB, as {link: {"tx": n, "rx": n}}."""

    index: int
    name: str
    uuid: str | None
    links: dict[int, dict[str, int]]


def parse_nvlink_throughput(text: str) -> list[GpuThroughput]:
    """Parse `nvidia-smi nvlink -gt d` (data Tx/Rx KiB per link)."""
    links: dict[int, dict[int, dict[str, int]]] = {}

    def on_link(pos: int, line: str, no: int) -> None:
        m = _THROUGHPUT.match(line)
        if not m:
            raise ParseError("expected 'Link N: Data Tx|Rx: <n> KiB'", no, line)
        links.setdefault(pos, {}).setdefault(int(m.group(1)), {})[m.group(2).lower()] = int(m.group(3))

    gpus = _blocks(text, on_link, "-gt d")
    return [GpuThroughput(i, name, uuid, links.get(pos, {})) for pos, (i, name, uuid) in enumerate(gpus)]
