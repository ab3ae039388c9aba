"""Parser for the text output of NVIDIA's nccl-tests (``all_reduce_perf`` and friends).

A pure function from text to frozen values. nccl-tests output is messy in practice: MPI ``--tag-output``
prefixes on every line, NCCL INFO/WARN lines interleaved anywhere (even inside a row), columns that changed
across releases (``redop``/``root`` added, ``error`` replaced by ``#wrong``), and failed runs with no table.
The column header line decides how rows are read, and a row that does not fit it exactly (token count,
types, or an algbw that does not match size/time) is skipped and reported rather than mis-parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size, is_float, is_int

_TAG_PREFIX = re.compile(r"^\[\d+,\d+\]<(?:stdout|stderr)>:")
_NCCL_LOG = re.compile(r"\bNCCL (?:INFO|WARN|TRACE|ERROR)\b")
_VERSION = re.compile(r"\bNCCL version (\d+\.\d+\.\d+)")
_TESTS_VERSION = re.compile(r"nccl-library=(\d{1,9})\b")
_NGPUS = re.compile(r"nGpus(?:\(perProc\))?\s+(\d{1,6})\b")
_NTHREAD = re.compile(r"nThread\s+(\d{1,6})\b")
_RANK = re.compile(r"^#\s*Rank\s+(\d{1,9})\b")
_DEVICE = re.compile(r"^#\s*Device\s+(\d{1,9})\s*->")
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*(\S{1,40})")
_OOB = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d{1,24})\s+(\w{1,20})")
_COLLECTIVE = re.compile(r"^#\s*Collective test starting:\s*(\S+)")
_FAILURE = re.compile(r"\b(Test (?:NCCL |CUDA )?failure\b.*)$")
_ERROR_LINE = re.compile(r"^#\s*error:\s*(.+)$")
_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}$")

# Column names as printed by each era, mapped to one vocabulary.
_LEAD_NAMES = {"size": "size", "bytes": "size", "count": "count", "n": "count", "type": "dtype",
               "redop": "redop", "op": "redop", "root": "root"}
_CHECK_NAMES = {"#wrong": "wrong", "wrong": "wrong", "error": "error", "res": "error"}


@dataclass(frozen=True)
class Placement:
    """One half of a row: out-of-place or in-place.

    ``wrong`` is the ``#wrong`` count (None when printed as N/A or when the era printed an error column);
    ``max_error`` is the older ``error``/``res`` column (max numeric error), None otherwise.
    """

    time_us: float
    algbw: float
    busbw: float
    wrong: int | None
    max_error: float | None = None


@dataclass(frozen=True)
class Row:
    size: int
    count: int
    dtype: str
    redop: str | None
    root: int | None
    out_of_place: Placement
    in_place: Placement


@dataclass(frozen=True)
class SkippedLine:
    """A line that looked like a result row but did not fit the table (e.g. cut by an interleaved log)."""

    line_no: int
    line: str
    reason: str


@dataclass(frozen=True)
class NcclTestsResult:
    rows: tuple[Row, ...]
    avg_busbw: float | None
    nranks: int | None
    nccl_version: str | None
    error: str | None
    skipped: tuple[SkippedLine, ...] = ()
    collective: str | None = None
    ngpus_per_proc: int | None = None
    nthreads: int | None = None
    out_of_bounds: int | None = None

    @property
    def max_busbw(self) -> float | None:
        return max((r.out_of_place.busbw for r in self.rows), default=None)


@dataclass(frozen=True)
class _Layout:
    lead: tuple[str, ...]
    check: str | None  # "wrong", "error" or None (no check column)
    time_unit_us: float  # multiplier to microseconds (nccl 1.x printed ms)
    timestamp: bool

    @property
    def group_len(self) -> int:
        return 3 + (1 if self.check else 0)

    @property
    def width(self) -> int:
        return len(self.lead) + 2 * self.group_len + (2 if self.timestamp else 0)


def _strip_prefix(line: str) -> str:
    return _TAG_PREFIX.sub("", line, count=1).rstrip("\r\n")


def _layout_from_header(body: str) -> _Layout | None:
    tokens = body.lstrip("#").split()
    lowered = [t.lower() for t in tokens]
    if "algbw" not in lowered or "busbw" not in lowered:
        return None
    if not lowered or lowered[0] not in ("size", "bytes"):
        return None
    time_name = "time" if "time" in lowered else ("cputime" if "cputime" in lowered else None)
    if time_name is None:
        return None
    first_time = lowered.index(time_name)
    lead = []
    for name in lowered[:first_time]:
        if name not in _LEAD_NAMES:
            return None
        lead.append(_LEAD_NAMES[name])
    after = lowered[first_time + 3:first_time + 4]
    check = _CHECK_NAMES.get(after[0]) if after else None
    nccl1 = "res" in lowered or lowered[0] == "bytes"
    return _Layout(tuple(lead), check, 1000.0 if nccl1 else 1.0, "timestamp" in lowered)


def _version_from_code(code: int) -> str:
    """NCCL_VERSION_CODE: X*10000+Y*100+Z since 2.9, X*1000+Y*100+Z before."""
    if code >= 10000:
        return f"{code // 10000}.{(code % 10000) // 100}.{code % 100}"
    return f"{code // 1000}.{(code % 1000) // 100}.{code % 100}"


def _placement(tokens: list[str], check: str | None, unit: float) -> Placement | str:
    for t in tokens[:3]:
        if not is_float(t):
            return f"not a finite number: {t[:40]!r}"
    time_us, algbw, busbw = (float(t) for t in tokens[:3])
    wrong: int | None = None
    max_error: float | None = None
    if check is not None:
        value = tokens[3]
        if value == "N/A":
            pass
        elif check == "wrong" and is_float(value):
            as_float = float(value)
            if as_float != int(as_float) or not 0 <= as_float < 2**64:
                return f"#wrong is not a count: {value[:40]!r}"
            wrong = int(as_float)
        elif check == "error" and is_float(value):
            max_error = float(value)
        else:
            return f"bad {check} value {value[:40]!r}"
    return Placement(time_us * unit, algbw, busbw, wrong, max_error)


def _consistent(size: int, p: Placement) -> bool:
    """algbw is size/time; a row whose digits were cut by an interleaved log line breaks that identity."""
    if p.time_us <= 0:
        return size == 0 or p.algbw == 0
    expected = size / (p.time_us * 1e3)
    return abs(expected - p.algbw) <= 0.02 + 0.25 * expected


def _row(tokens: list[str], layout: _Layout) -> Row | str:
    stamped = len(tokens) == layout.width and _DATE.match(tokens[-2]) and _TIME.match(tokens[-1])
    if layout.timestamp and stamped:
        tokens = tokens[:-2]
    expected = len(layout.lead) + 2 * layout.group_len
    if len(tokens) != expected:
        return f"expected {expected} fields, found {len(tokens)}"
    values: dict[str, object] = {"redop": None, "root": None}
    for name, tok in zip(layout.lead, tokens, strict=False):
        if name in ("size", "count", "root"):
            if not is_int(tok):
                return f"{name} is not an integer of at most 24 digits: {tok[:40]!r}"
            values[name] = int(tok)
        else:
            if not _WORD.match(tok):
                return f"{name} is not a name: {tok[:40]!r}"
            values[name] = tok
    rest = tokens[len(layout.lead):]
    g = layout.group_len
    oop = _placement(rest[:g], layout.check, layout.time_unit_us)
    inp = _placement(rest[g:2 * g], layout.check, layout.time_unit_us)
    if isinstance(oop, str):
        return oop
    if isinstance(inp, str):
        return inp
    if "size" not in values or "count" not in values or "dtype" not in values:
        return "missing size, count or type column"
    size = int(values["size"])  # type: ignore[arg-type]
    if not (_consistent(size, oop) and _consistent(size, inp)):
        return "algbw does not match size/time (row cut or merged)"
    return Row(size, int(values["count"]), str(values["dtype"]),  # type: ignore[arg-type]
               values["redop"], values["root"], oop, inp)  # type: ignore[arg-type]


def parse_nccl_tests(text: str) -> NcclTestsResult:
    """Parse one nccl-tests run's stdout (optionally with stderr and NCCL logs mixed in).

    Raises ParseError when the text holds neither a results table nor a recognisable failure. Work is linear
    in the text: numbers are read only from short tokens and rank numbers are counted, never enumerated.
    """
    check_size(text, "nccl-tests output")
    layout: _Layout | None = None
    rows: list[Row] = []
    skipped: list[SkippedLine] = []
    avg: float | None = None
    version: str | None = None
    error: str | None = None
    collective: str | None = None
    ngpus: int | None = None
    nthreads: int | None = None
    oob: int | None = None
    ranks: set[int] = set()
    devices: set[int] = set()
    truncated_ranks = False
    saw_header = False

    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = _strip_prefix(raw)
        body = line.strip()
        if not body:
            continue
        if version is None:
            m = _VERSION.search(body)
            if m:
                version = m.group(1)
            else:
                m2 = _TESTS_VERSION.search(body) if body.startswith("#") else None
                if m2:
                    version = _version_from_code(int(m2.group(1)))
        if error is None:
            fm = _FAILURE.search(body)
            if fm:
                error = fm.group(1).strip()
                continue
        if _NCCL_LOG.search(body):
            # A log line on its own is noise; one glued to the start of a row means the row is damaged.
            if layout is not None and re.match(r"^\d", body):
                skipped.append(SkippedLine(line_no, raw, "row interleaved with an NCCL log line"))
            continue
        if body.startswith("#"):
            if _NTHREAD.search(body) or _NGPUS.search(body):
                saw_header = True
                if (m := _NTHREAD.search(body)) is not None:
                    nthreads = int(m.group(1))
                if (m := _NGPUS.search(body)) is not None:
                    ngpus = int(m.group(1))
                continue
            if (m := _RANK.match(body)) is not None:
                ranks.add(int(m.group(1)))
                # nccl-tests cuts the gathered device report at 2 KiB per process and ends it with "...".
                truncated_ranks = truncated_ranks or body.endswith("...")
                continue
            if (m := _DEVICE.match(body)) is not None:
                devices.add(int(m.group(1)))
                continue
            if body.endswith("...") and ranks:
                truncated_ranks = True
                continue
            if (m := _AVG.match(body)) is not None:
                # nan or inf (a run with no valid row) is no bandwidth at all
                avg = float(m.group(1)) if is_float(m.group(1)) else None
                continue
            if (m := _OOB.match(body)) is not None:
                oob = int(m.group(1))
                if m.group(2).upper() == "FAILED" and error is None:
                    error = f"data validation failed: {oob} out-of-bounds values"
                continue
            if (m := _COLLECTIVE.match(body)) is not None:
                collective = m.group(1)
                continue
            if (m := _ERROR_LINE.match(body)) is not None and error is None:
                error = m.group(1).strip()
                continue
            new_layout = _layout_from_header(body)
            if new_layout is not None:
                layout = new_layout
            continue
        if layout is None:
            continue
        if not re.match(r"^\d", body):
            continue
        parsed = _row(body.split(), layout)
        if isinstance(parsed, Row):
            rows.append(parsed)
        else:
            skipped.append(SkippedLine(line_no, raw, parsed))

    if layout is None and error is None:
        if saw_header:
            raise ParseError("nccl-tests output has a header but no results table and no failure message")
        raise ParseError("not nccl-tests output: no results table header (size ... algbw busbw) found")
    if not rows and error is None and layout is not None and skipped:
        first = skipped[0]
        raise ParseError(f"no result row could be read ({first.reason})", first.line_no, first.line)

    nranks: int | None = None
    # distinct non-negative numbers are exactly 0..n-1 when there are max+1 of them (no range() is built:
    # "# Rank 100000000" must not allocate 10^8 numbers)
    if ranks and not truncated_ranks and len(ranks) == max(ranks) + 1:
        nranks = len(ranks)
    elif not ranks and devices and len(devices) == max(devices) + 1:
        nranks = len(devices)
    return NcclTestsResult(tuple(rows), avg, nranks, version, error, tuple(skipped), collective,
                           ngpus, nthreads, oob)
