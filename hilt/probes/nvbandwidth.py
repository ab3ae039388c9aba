"""Parser of NVIDIA nvbandwidth output (text of v0.2 to v0.10, or `-j` JSON).

Text runs are a header (version, CUDA and driver versions, `Device N:` lines), then per testcase a
`Running <name>.` line, a matrix title ("memcpy CE GPU(row) -> GPU(column) bandwidth (GB/s)"), a column
header, rows with `N/A` on the diagonal, and `SUM <name> <value>` (v0.10 adds COEFFICIENT_OF_VARIATION).
Bidirectional device-to-device testcases print three matrices under one Running line since v0.10
(Read1/Read2/Total or Write1/Write2/Total); each is keyed by the name its SUM line gives
(`<testcase>_read1`, `_read2`, `_total`). Latency testcases are in ns, not GB/s, and are kept apart in
``latencies``. Waived testcases print `Waiving <name>.` (v0.1-v0.4), `Waived: ` (v0.8, without a name) or
`Waived.` under their Running line. A testcase that starts but prints no matrix (an abort) is listed in
``errors``.

The output is found in a larger text: lines that are not nvbandwidth's (a paste's stray lines, a script's
separators, another tool writing to the same terminal, such as `perf stat -I` counters between matrix rows) are
passed over, but a line that looks like a matrix row must be one, and a matrix must not skip a row. Several runs
one after another each start with their `nvbandwidth Version:` line: ``parse_nvbandwidth_runs`` returns each,
``parse_nvbandwidth`` the last. Text with no nvbandwidth line at all (cuda-samples' p2pBandwidthLatencyTest,
another tool) raises ParseError.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size, is_float, to_float

_VERSION = re.compile(r"^nvbandwidth Version: (\S{1,40})$")
_RUNNING = re.compile(r"^Running ([A-Za-z0-9_]{1,120})\.$")
_SUM = re.compile(r"^SUM ([A-Za-z0-9_]{1,120}) (\S{1,40})$")
_COV = re.compile(r"^COEFFICIENT_OF_VARIATION ([A-Za-z0-9_]{1,120}) (\S{1,40})$")
_WAIVED = re.compile(r"^Waived[:.]?(?: ([A-Za-z0-9_]{1,120})\.?)?$")
_WAIVING = re.compile(r"^Waiving ([A-Za-z0-9_]{1,120})\.$")  # v0.1-v0.4: "Waiving " << testKey << "."
_CELL_LIKE = re.compile(r"^(N/A|[-+]?(\d|\.\d)[0-9A-Za-z.+-]*|[-+]?(inf|nan|infinity))$", re.IGNORECASE)
_TITLE = re.compile(r"^(memcpy|memory latency) .{1,200} \((GB/s|ns)\)$")
_HEADER_LINES = ("Built from Git version:", "CUDA Runtime Version:", "CUDA Driver Version",
                 "Driver Version:", "NOTE:", "Additional system-specific tuning",
                 "Performance can vary with", "nvbandwidth Version:")
_DEVICE = re.compile(r"^Device \d{1,4}: .{1,200}$")
_SUFFIXES = {"read1": "_read1", "read2": "_read2", "write1": "_write1", "write2": "_write2", "total": "_total"}
_MAX_GPUS = 1024
_INDEX = re.compile(r"^[0-9]{1,4}$")  # a GPU index as nvbandwidth prints it (ASCII digits)


@dataclass(frozen=True)
class NvbandwidthResult:
    testcases: dict[str, dict[tuple[int, int], float]]
    sums: dict[str, float]
    waived: list[str]
    version: str | None
    latencies: dict[str, dict[tuple[int, int], float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    unnamed_waived: int = 0
    cv: dict[str, float] = field(default_factory=dict)

    def total(self, testcase: str) -> float | None:
        """The SUM of a testcase; for bidirectional ones printed as three matrices, the `_total` SUM."""
        if testcase in self.sums:
            return self.sums[testcase]
        return self.sums.get(testcase + "_total")


def parse_nvbandwidth(text: str) -> NvbandwidthResult:
    """The last nvbandwidth run in ``text`` (text, or `-j` JSON)."""
    return parse_nvbandwidth_runs(text)[-1]


def parse_nvbandwidth_runs(text: str) -> list[NvbandwidthResult]:
    """Every nvbandwidth run in ``text``, in the order printed; ParseError when it holds none.

    A run starts at its `nvbandwidth Version:` line; what comes before the second one (a preamble, the first
    run) is the first run."""
    check_size(text, "nvbandwidth output")
    if text.lstrip().startswith("{"):
        return [_parse_json(text)]
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _VERSION.match(line.strip())][1:]
    bounds = [0, *starts, len(lines)]
    return [_Text(first).parse(lines[first:end]) for first, end in zip(bounds, bounds[1:], strict=False)]


def _row_like(tokens: list[str]) -> bool:
    """``N  cell cell ...``: a GPU index, then only numbers and N/A (a bad number is a bad row, not another
    tool's line; a line with a word in it is not a row)."""
    return (len(tokens) > 1 and bool(_INDEX.match(tokens[0]))
            and all(_CELL_LIKE.match(t) for t in tokens[1:]))


def _cell(token: str, no: int, line: str) -> float | None:
    if token == "N/A":
        return None
    value = to_float(token, "nvbandwidth matrix cell", no, line)
    if value < 0:
        raise ParseError("nvbandwidth matrix cell is negative", no, line)
    return value


class _Text:
    def __init__(self, offset: int = 0) -> None:
        self.offset = offset  # line number of this run's first line, less one
        self.complaint: str | None = None  # what the running testcase printed instead of a result
        self.rows: list[int] = []
        self.testcases: dict[str, dict[tuple[int, int], float]] = {}
        self.latencies: dict[str, dict[tuple[int, int], float]] = {}
        self.sums: dict[str, float] = {}
        self.cv: dict[str, float] = {}
        self.waived: list[str] = []
        self.unnamed_waived = 0
        self.errors: dict[str, str] = {}
        self.version: str | None = None
        self.running: str | None = None  # testcase named by the last Running line
        self.running_output = False  # it printed a matrix or SUM
        self.matrix: dict[tuple[int, int], float] | None = None
        self.unit = "GB/s"
        self.suffix = ""
        self.columns: list[int] | None = None
        self.matrix_line = 0
        self.recognised = False

    def _store(self, name: str) -> None:
        if self.matrix is None:
            return
        if self.rows != list(range(len(self.rows))):
            missing = sorted(set(range(max(self.rows) + 1)) - set(self.rows))
            why = f"row {missing[0]} is missing" if missing else f"rows {self.rows} are not in order"
            raise ParseError(f"nvbandwidth matrix {name}: {why}", self.matrix_line, None)
        (self.latencies if self.unit == "ns" else self.testcases)[name] = self.matrix
        self.matrix = None
        self.columns = None
        self.rows = []

    def _flush_unnamed(self, no: int, line: str) -> None:
        """A matrix ended without a SUM line: name it from the Running line."""
        if self.matrix is None:
            return
        if self.running is None:
            raise ParseError("an nvbandwidth matrix with neither a Running line nor a SUM line naming it",
                             self.matrix_line, None)
        self._store(self.running + self.suffix)

    def _end_testcase(self) -> None:
        if self.running is not None and not self.running_output and self.running not in self.errors:
            self.errors[self.running] = self.complaint or "printed no result"
        self.complaint = None

    def parse(self, lines: list[str]) -> NvbandwidthResult:
        for no, raw in enumerate(lines, start=self.offset + 1):
            line = raw.strip()
            if not line or line in ("...", "[...]", "…"):
                continue
            tokens = line.split()
            if self.columns is not None and _row_like(tokens):
                self._row(tokens, no, raw)
                continue
            m = _SUM.match(line)
            if m:
                self._sum(m.group(1), m.group(2), no, raw)
                continue
            if self.matrix is not None and self.columns is None and all(_INDEX.match(t) for t in tokens):
                self._columns(tokens, no, raw)
                continue
            if self._line(line, no, raw):
                continue
            if self.running is not None and not self.running_output and self.complaint is None:
                # the testcase's own complaint before it died (e.g. a pattern check, "ERROR: ...", "Aborted")
                self.complaint = line[:300]
            # anything else is not nvbandwidth's: a paste's stray line, a separator, another tool's output
        if self.matrix is not None:
            if self.columns is None:
                raise ParseError("an nvbandwidth matrix ends inside its header", self.matrix_line, None)
            self._flush_unnamed(0, "")
        self._end_testcase()
        if not self.recognised and not self.sums:
            raise ParseError("not nvbandwidth output: no version line, Running line or SUM line")
        return NvbandwidthResult(self.testcases, self.sums, self.waived, self.version, self.latencies,
                                 self.errors, self.unnamed_waived, self.cv)

    def _line(self, line: str, no: int, raw: str) -> bool:
        """Handle one of nvbandwidth's own lines (other than rows and SUM); False for a line that is not."""
        m = _RUNNING.match(line)
        if m:
            self._close_matrix(no, raw)
            self._end_testcase()
            self.running, self.running_output, self.suffix = m.group(1), False, ""
            self.recognised = True
            return True
        m = _TITLE.match(line)
        if m:
            self._close_matrix(no, raw)
            self._title(line, m.group(2), no, raw)
            return True
        m = _COV.match(line)
        if m:
            self._close_matrix(no, raw)
            self.cv[m.group(1)] = to_float(m.group(2), "coefficient of variation", no, raw)
            return True
        m = _WAIVING.match(line)
        if m:
            self._close_matrix(no, raw)
            self.recognised = True
            if m.group(1) not in self.waived:
                self.waived.append(m.group(1))
            return True
        m = _WAIVED.match(line)
        if m:
            self._close_matrix(no, raw)
            self.recognised = True
            name = m.group(1)
            if name is None and self.running is not None and not self.running_output:
                name = self.running
                self.running = None
            if name is None:
                self.unnamed_waived += 1
            elif name not in self.waived:
                self.waived.append(name)
            return True
        m = _VERSION.match(line)
        if m:
            self._close_matrix(no, raw)
            self.version = m.group(1)
            self.recognised = True
            return True
        if line.startswith(_HEADER_LINES) or _DEVICE.match(line):
            self._close_matrix(no, raw)
            return True
        return False

    def _close_matrix(self, no: int, raw: str) -> None:
        """One of nvbandwidth's own lines ends an open matrix (another tool's line does not)."""
        if self.matrix is None:
            return
        if self.columns is None:
            raise ParseError("expected the nvbandwidth matrix's column numbers", no, raw)
        self._flush_unnamed(no, raw)

    def _title(self, line: str, unit: str, no: int, raw: str) -> None:
        self.matrix = {}
        self.columns = None
        self.unit = unit
        self.matrix_line = no
        self.recognised = True
        words = line.split()
        self.suffix = ""
        if len(words) >= 3 and words[-3].lower() in _SUFFIXES and words[-2] == "bandwidth":
            self.suffix = _SUFFIXES[words[-3].lower()]
        if self.running is not None:
            self.running_output = True

    def _columns(self, tokens: list[str], no: int, raw: str) -> None:
        if not tokens or len(tokens) > _MAX_GPUS or not all(_INDEX.match(t) for t in tokens):
            raise ParseError("expected the nvbandwidth matrix's column numbers", no, raw)
        self.columns = [int(t) for t in tokens]

    def _row(self, tokens: list[str], no: int, raw: str) -> None:
        assert self.columns is not None and self.matrix is not None
        if not _INDEX.match(tokens[0]):  # ASCII digits: str.isdigit() takes "²", which int() refuses
            raise ParseError("expected an nvbandwidth matrix row 'N  <value> ...'", no, raw)
        if len(tokens) - 1 != len(self.columns):
            raise ParseError(f"nvbandwidth matrix row has {len(tokens) - 1} cells for {len(self.columns)} "
                             "columns", no, raw)
        row = int(tokens[0])
        self.rows.append(row)
        for col, token in zip(self.columns, tokens[1:], strict=True):
            value = _cell(token, no, raw)
            if value is not None:
                self.matrix[(row, col)] = value

    def _sum(self, name: str, token: str, no: int, raw: str) -> None:
        value = to_float(token, f"SUM {name}", no, raw)
        self.recognised = True
        if self.running is not None and not name.startswith(self.running):
            raise ParseError(f"SUM of {name} under 'Running {self.running}.'", no, raw)
        if self.running is not None:
            self.running_output = True
        unit = self.unit if self.matrix is not None else "GB/s"
        if self.matrix is not None:
            if self.columns is None:
                raise ParseError("SUM line inside a matrix header", no, raw)
            self._store(name)
        if unit == "GB/s":
            self.sums[name] = value


# --- JSON -----------------------------------------------------------------------------------------------

def _parse_json(text: str) -> NvbandwidthResult:
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ParseError("nvbandwidth JSON: nested too deeply") from None
    except ValueError as exc:
        raise ParseError(f"nvbandwidth JSON: {str(exc)[:120]}", getattr(exc, "lineno", None)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nvbandwidth"), dict):
        raise ParseError("not `nvbandwidth -j` output: no 'nvbandwidth' object")
    nvb = doc["nvbandwidth"]
    version = nvb.get("version")
    cases = nvb.get("testcases")
    if not isinstance(cases, list):
        raise ParseError("nvbandwidth JSON: 'testcases' must be a list")
    result = NvbandwidthResult({}, {}, [], version if isinstance(version, str) else None)
    for case in cases:
        if not isinstance(case, dict) or not isinstance(case.get("name"), str):
            raise ParseError("nvbandwidth JSON: each testcase must be an object with a name")
        name = case["name"]
        status = str(case.get("status", "")).lower()
        if status in ("waived", "not supported", "notsupported"):
            result.waived.append(name)
            continue
        if status not in ("passed", "pass"):
            result.errors[name] = str(case.get("status"))[:300]
            continue
        desc = case.get("bandwidth_description", "")
        latency = isinstance(desc, str) and desc.rstrip().endswith("(ns)")
        matrix = _json_matrix(case.get("bandwidth_matrix"), name)
        (result.latencies if latency else result.testcases)[name] = matrix
        total = case.get("sum")
        if total is not None and not latency:
            if isinstance(total, bool) or not isinstance(total, (int, float)) or not math.isfinite(total):
                raise ParseError(f"nvbandwidth JSON: {name} sum must be a finite number")
            result.sums[name] = float(total)
    return result


def _json_matrix(rows: object, name: str) -> dict[tuple[int, int], float]:
    if not isinstance(rows, list) or len(rows) > _MAX_GPUS:
        raise ParseError(f"nvbandwidth JSON: {name} bandwidth_matrix must be a list of rows")
    matrix: dict[tuple[int, int], float] = {}
    for r, row in enumerate(rows):
        if not isinstance(row, list) or len(row) > _MAX_GPUS:
            raise ParseError(f"nvbandwidth JSON: {name} row {r} must be a list")
        for c, cell in enumerate(row):
            if isinstance(cell, str):
                cell = cell.strip()
                if cell == "N/A":
                    continue
                if not is_float(cell):
                    raise ParseError(f"nvbandwidth JSON: {name} cell ({r}, {c}) {cell[:40]!r} is not a number")
                matrix[(r, c)] = float(cell)
            elif isinstance(cell, (int, float)) and not isinstance(cell, bool) and math.isfinite(cell):
                matrix[(r, c)] = float(cell)
            else:
                raise ParseError(f"nvbandwidth JSON: {name} cell ({r}, {c}) is not a number")
    return matrix
