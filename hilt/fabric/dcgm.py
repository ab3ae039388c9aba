"""Parser of NVIDIA DCGM's `dcgmi diag` output: the 78-column text box of DCGM 1.x to 4.x, or `-j` JSON.

The box changed with every major version: 1.x-3.x print title-case test names ("GPU Memory") with one
summary per status ("Pass - All", "Fail - GPU: 2", "Pass - GPUs: 0, 1, 3"), DCGM 4.x prints plugin names
("memory") with a plain "Pass" and one "GPUn: Pass" row per GPU. "Warning", "Info" and "Error" rows are
messages of the test above them, wrapped every 45 characters mid-word; they are joined back here. JSON
changed between 3.x ("DCGM GPU Diagnostic", `gpu_ids`) and 4.x ("DCGM Diagnostic", `entity_id`,
`test_summary`). A run that could not complete ("Error: Unable to complete diagnostic") parses but never
reads as passed.

The output is found in a larger text: a prolog script's log, a capture holding the tool twice. Lines outside a
diagnostic box or `-j` document are not DCGM's and are passed over; a box may sit behind a fixed-width prefix
(an indent, a log's timestamp), read from the column where its top border starts. ``parse_dcgm_diag_runs``
returns every run in order, ``parse_dcgm_diag`` the last (the freshest state of the node). Text that holds no
run (another `dcgmi` table, another tool) raises ParseError, as does a box or document that is broken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size

RESULTS = ("pass", "fail", "warn", "skip", "not run")
_STATUS = {"pass": "pass", "passed": "pass", "fail": "fail", "failed": "fail", "warn": "warn",
           "warning": "warn", "skip": "skip", "skipped": "skip", "not run": "not run", "notrun": "not run"}
#: Worst first: the overall result of a test printed with several status rows.
_SEVERITY = ("fail", "warn", "pass", "skip", "not run")
_MESSAGE_ROWS = ("Warning", "Info", "Error")
_WRAP = 45  # DCGM wraps the Result column every 45 characters, splitting words
_MAX_GPU = 4096


@dataclass(frozen=True)
class DcgmTest:
    """One diagnostic test: ``gpus`` maps a GPU index to its own result where the output names GPUs
    ("Fail - GPU: 2", "GPU0: Pass", JSON entities); it is empty for "Pass - All"."""

    name: str
    category: str | None
    result: str
    gpus: dict[int, str] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DcgmDiag:
    level: int | None
    tests: list[DcgmTest]
    completed: bool
    error: str | None = None
    version: str | None = None
    driver: str | None = None
    messages: list[str] = field(default_factory=list)  # messages printed before any test (a fragment)

    @property
    def failed(self) -> list[str]:
        return [t.name for t in self.tests if t.result == "fail"]

    @property
    def passed(self) -> bool:
        """True only when the run completed and no test failed."""
        return self.completed and self.error is None and bool(self.tests) and not self.failed

    def test(self, name: str) -> DcgmTest | None:
        return next((t for t in self.tests if t.name == name), None)


def _result(word: str, what: str, line_no: int | None = None, line: str | None = None) -> str:
    value = _STATUS.get(" ".join(word.lower().split()))
    if value is None:
        raise ParseError(f"{what}: {word[:40]!r} is not a DCGM result (Pass, Fail, Warn, Skip, Not Run)",
                         line_no, line)
    return value


def _worst(results: list[str]) -> str:
    return min(results, key=_SEVERITY.index)


def _gpu_index(token: str, what: str, line_no: int | None = None, line: str | None = None) -> int:
    token = token.strip()
    if not token.isdigit() or len(token) > 4 or int(token) >= _MAX_GPU:
        raise ParseError(f"{what}: {token[:40]!r} is not a GPU index", line_no, line)
    return int(token)


def parse_dcgm_diag(text: str) -> DcgmDiag:
    """The last `dcgmi diag` run (text or `-j` JSON, any DCGM version) in ``text``."""
    return parse_dcgm_diag_runs(text)[-1]


def parse_dcgm_diag_runs(text: str) -> list[DcgmDiag]:
    """Every `dcgmi diag` run in ``text``, in the order printed; ParseError when it holds none."""
    check_size(text, "dcgmi diag output")
    return _Scan(text).runs()


# --- text -----------------------------------------------------------------------------------------------

def _is_border(line: str, fill: str) -> bool:
    """`+-----+-----+` (fill "-") or `+=====+=====+` (fill "=")."""
    if len(line) < 5 or line[0] != "+" or line[-1] != "+":
        return False
    parts = line[1:-1].split("+")
    return len(parts) == 2 and all(p and p.strip(fill) == "" for p in parts)


def _category(line: str) -> str | None:
    """`|-----  Deployment  --------+----...|` or `+-----  Hardware  ---+---+` -> the category name."""
    if len(line) < 8 or line[0] not in "|+" or line[-1] not in "|+" or not line.startswith("-----", 1):
        return None
    inner = line[1:-1]
    sep = inner.find("+")
    if sep < 0:
        return None
    left, right = inner[:sep], inner[sep + 1:]
    if right.strip("-") != "":
        return None
    name = left.strip("-").strip()
    if not name or not left.strip().startswith("-") or not left.strip().endswith("-"):
        return None
    if not all(ch.isalnum() or ch in " /&" for ch in name):
        return None
    return name


def _row(line: str) -> tuple[str, str] | None:
    """`| name | value |` -> (name stripped, value cell as printed, without the one leading blank)."""
    if len(line) < 5 or line[0] != "|" or line[-1] != "|":
        return None
    sep = line.find("|", 1)
    if sep == len(line) - 1:
        return None
    name = line[1:sep].strip()
    value = line[sep + 1:-1]
    if value.startswith(" "):
        value = value[1:]
    return name, value


def _join_wrapped(chunks: list[str]) -> str:
    """DCGM cut the message every 45 characters (mid-word, blanks kept): put the chunks end to end."""
    if not chunks:
        return ""
    whole = "".join(c[:_WRAP].ljust(_WRAP) for c in chunks[:-1]) + chunks[-1]
    return whole.strip()


def _summary(value: str, line_no: int, line: str) -> tuple[str, dict[int, str] | None] | None:
    """A result cell: "Pass", "Pass - All", "Fail - GPU: 2", "Pass - GPUs: 0, 1" -> (result, gpus|None).

    None when the cell is not a result (then the row is not a test)."""
    head, dash, tail = value.partition(" - ")
    result = _STATUS.get(" ".join(head.lower().split()))
    if result is None:
        return None
    if not dash:
        return (result, None) if not tail.strip() else None
    tail = tail.strip()
    if tail == "All":
        return result, None
    label, colon, ids = tail.partition(":")
    if not colon or label.strip() not in ("GPU", "GPUs"):
        raise ParseError("expected 'All' or 'GPU: n' / 'GPUs: n, m' after the result", line_no, line)
    return result, {_gpu_index(t, "GPU list", line_no, line): result for t in ids.split(",")}


def _per_gpu(value: str, line_no: int, line: str) -> tuple[int, str] | None:
    """DCGM 4.x per-GPU row "GPU0: Pass"."""
    v = value.strip()
    if not v.startswith("GPU") or ":" not in v:
        return None
    ident, _, res = v.partition(":")
    if not ident[3:].isdigit():
        return None
    result = _STATUS.get(" ".join(res.lower().split()))
    if result is None:
        return None
    return _gpu_index(ident[3:], "GPU row", line_no, line), result


class _Test:
    def __init__(self, name: str, category: str | None, results: list[str], gpus: dict[int, str]):
        self.name = name
        self.category = category
        self.results = results
        self.gpus = gpus
        self.messages: list[str] = []

    def freeze(self) -> DcgmTest:
        return DcgmTest(self.name, self.category, _worst(self.results), dict(self.gpus), list(self.messages))


_UNABLE = "Error: Unable to complete diagnostic"
_SUCCESS = "Successfully ran diagnostic for group"
_ELISIONS = ("...", "[...]", "…")


def _error_run(error: str) -> DcgmDiag:
    return DcgmDiag(None, [], False, error)


class _Scan:
    """Walks a text for runs: boxes, `-j` documents and "Unable to complete" errors, passing over the rest."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts: list[int] = []  # character offset of each line, for the JSON decoder
        at = 0
        for line in self.lines:
            self.starts.append(at)
            at += len(line)

    def runs(self) -> list[DcgmDiag]:
        found: list[DcgmDiag] = []
        success = False  # "Successfully ran ..." is printed before its box
        unable: str | None = None  # an "Unable to complete" error waiting for its box, or for the end
        other_error: str | None = None  # dcgmi's own "Error: ..." (host engine down): a run only when alone
        first = next((i for i, ln in enumerate(self.lines) if ln.strip()), None)
        i = 0
        while i < len(self.lines):
            raw = self.lines[i].rstrip("\r\n")
            body = raw.strip()
            if body.startswith("{"):
                decoded = self._json(i, strict=i == first)
                if decoded is not None:
                    run, i = decoded
                    found.append(run)
                    continue
            if _SUCCESS in body:
                success = True
            elif _UNABLE in body:
                if unable is not None:
                    found.append(_error_run(unable))
                unable = body[body.index(_UNABLE) + len("Error:"):].strip()
            elif body.startswith("Error:"):
                other_error = body[len("Error:"):].strip()
            else:
                col = self._box_at(i)
                if col is not None:
                    run, i = _Box(self.lines, i, col).parse(success, unable)
                    found.append(run)
                    success, unable = False, None
                    continue
            i += 1
        if unable is not None:
            found.append(_error_run(unable))
        if not found and other_error is not None:
            found.append(_error_run(other_error))
        if not found:
            raise ParseError("not `dcgmi diag` output: no diagnostic table, no `-j` document and no "
                             "'Unable to complete' error")
        return found

    def _box_at(self, i: int) -> int | None:
        """The column of a diagnostic box whose top border is line ``i`` (its header on the next line)."""
        raw = self.lines[i].rstrip()
        col = raw.find("+")
        if col < 0 or not _is_border(raw[col:], "-") or i + 1 >= len(self.lines):
            return None
        row = _row(self.lines[i + 1].rstrip()[col:])
        return col if row is not None and row[0] == "Diagnostic" else None

    def _json(self, i: int, strict: bool) -> tuple[DcgmDiag, int] | None:
        """The `-j` document starting at line ``i`` and the line after it; None when there is none there
        (``strict``, for a text that starts with one: ParseError instead)."""
        try:
            doc, end = json.JSONDecoder().raw_decode(self.text, self.starts[i] + self.lines[i].index("{"))
        except RecursionError:
            if strict:
                raise ParseError("dcgmi diag JSON: nested too deeply") from None
            return None
        except ValueError as exc:  # JSONDecodeError, and integers over 4,300 digits
            if strict:
                line_no = getattr(exc, "lineno", None)
                raise ParseError(f"dcgmi diag JSON: {str(exc)[:120]}", line_no) from None
            return None
        if not isinstance(doc, dict) or not ({"DCGM Diagnostic", "DCGM GPU Diagnostic"} & set(doc)):
            if strict:
                _obj(doc, "the document")
                raise ParseError("not `dcgmi diag -j` output: no 'DCGM Diagnostic' or 'DCGM GPU Diagnostic' "
                                 "object")
            return None
        after = i
        while after < len(self.lines) and self.starts[after] < end:
            after += 1
        return _json_run(doc), after


class _Box:
    """One diagnostic box from its top border (line ``top``, column ``col``) to its bottom border, or to the
    first line that is not part of a box (a box cut short, or one printed without its footer)."""

    def __init__(self, lines: list[str], top: int, col: int):
        self.lines = lines
        self.top = top
        self.col = col

    def parse(self, success: bool, error: str | None) -> tuple[DcgmDiag, int]:
        tests: list[_Test] = []
        orphan: list[str] = []
        metadata: dict[str, str] = {}
        category: str | None = None
        chunks: list[str] | None = None  # the message being read
        closed = False

        def end_message() -> None:
            nonlocal chunks
            if chunks is not None:
                msg = _join_wrapped(chunks)
                (tests[-1].messages if tests else orphan).append(msg)
                chunks = None

        i = self.top + 2  # the border and the header were found by the scanner
        if i >= len(self.lines):
            raise ParseError("`dcgmi diag` table ends inside its header")
        rule = self.lines[i].rstrip()
        if not _is_border(rule[self.col:], "="):
            raise ParseError("not `dcgmi diag` output: expected the '+====+====+' rule", i + 1, rule)
        i += 1
        while i < len(self.lines):
            raw = self.lines[i].rstrip("\r\n")
            no = i + 1
            line = raw.rstrip()
            body = line.strip()
            if not body or body in _ELISIONS:
                i += 1
                continue
            line = line[self.col:]
            if not line or line[0] not in "|+":
                break  # the box ends here: what follows is not DCGM's
            i += 1
            name = _category(line)
            if name is not None:
                end_message()
                category = name
                continue
            if _is_border(line, "-"):
                end_message()
                closed = True
                break
            row = _row(line)
            if row is None:
                raise ParseError("expected a '| name | result |' row of the `dcgmi diag` table", no, raw)
            cell_name, value = row
            if category == "Metadata":
                if not cell_name:
                    raise ParseError("a Metadata row without a name", no, raw)
                metadata[cell_name] = value.strip()
                continue
            if cell_name in _MESSAGE_ROWS:
                end_message()
                chunks = [value]
                continue
            if not cell_name:
                if chunks is not None:
                    chunks.append(value)
                    continue
                if not tests:
                    raise ParseError("a continuation row with no test above it", no, raw)
                per_gpu = _per_gpu(value, no, raw)
                if per_gpu is not None:
                    tests[-1].gpus[per_gpu[0]] = per_gpu[1]
                    continue
                summary = _summary(value.strip(), no, raw)
                if summary is None:
                    raise ParseError("expected 'GPUn: <result>' or '<result> - GPU: n' under a test", no, raw)
                tests[-1].results.append(summary[0])
                tests[-1].gpus.update(summary[1] or {})
                continue
            end_message()
            summary = _summary(value.strip(), no, raw)
            if summary is None:
                raise ParseError(f"test {cell_name[:40]!r}: the result is not Pass, Fail, Warn, Skip or Not Run",
                                 no, raw)
            tests.append(_Test(cell_name, category, [summary[0]], dict(summary[1] or {})))
        end_message()
        completed = error is None and (success or closed)
        return DcgmDiag(None, [t.freeze() for t in tests], completed, error, metadata.get("DCGM Version"),
                        metadata.get("Driver Version Detected"), orphan), i


# --- JSON -----------------------------------------------------------------------------------------------

def _obj(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise ParseError(f"dcgmi diag JSON: {what} must be an object, not {type(value).__name__}")
    return value


def _list(value: object, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"dcgmi diag JSON: {what} must be a list, not {type(value).__name__}")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ParseError(f"dcgmi diag JSON: {what} must be a string, not {type(value).__name__}")
    return value


def _texts(value: object, what: str) -> list[str]:
    """`warnings`/`info`: a string, a list of strings, or a list of {"warning": ...} objects."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out = []
    for item in _list(value, what):
        if isinstance(item, dict):
            out.append(_str(item.get("warning", item.get("info", item.get("msg"))), f"{what} text"))
        else:
            out.append(_str(item, what))
    return out


def _gpu_ids(value: object) -> list[int]:
    """3.x `gpu_ids`: "0,1,2", a list of numbers, or one number."""
    if isinstance(value, bool):
        raise ParseError("dcgmi diag JSON: gpu_ids must be GPU indices")
    if isinstance(value, int):
        return [_gpu_index(str(value), "gpu_ids")]
    if isinstance(value, str):
        return [_gpu_index(t, "gpu_ids") for t in value.split(",") if t.strip()]
    return [_gpu_index(str(v), "gpu_ids") if isinstance(v, int) and not isinstance(v, bool)
            else _gpu_index(_str(v, "gpu_ids"), "gpu_ids") for v in _list(value, "gpu_ids")]


def _json_test(raw: object, category: str | None) -> DcgmTest:
    t = _obj(raw, "a test")
    name = _str(t.get("name"), "test name")
    results: list[str] = []
    gpus: dict[int, str] = {}
    messages: list[str] = []

    def note(texts: list[str]) -> None:
        for m in texts:
            if m not in messages:
                messages.append(m)

    for r in _list(t.get("results"), f"{name} results"):
        r = _obj(r, f"{name} result")
        res = _result(_str(r.get("status"), f"{name} status"), f"{name} status")
        results.append(res)
        if "entity_id" in r:
            if r.get("entity_group", "GPU") == "GPU":
                gid = r["entity_id"]
                if not isinstance(gid, int) or isinstance(gid, bool):
                    raise ParseError(f"dcgmi diag JSON: {name} entity_id must be a number")
                gpus[_gpu_index(str(gid), "entity_id")] = res
        elif "gpu_ids" in r:
            for gid in _gpu_ids(r["gpu_ids"]):
                gpus[gid] = res
        note(_texts(r.get("warnings"), f"{name} warnings"))
        note(_texts(r.get("info"), f"{name} info"))
    summary = t.get("test_summary")
    if summary is not None:
        s = _obj(summary, f"{name} test_summary")
        if "status" in s:
            results = [_result(_str(s["status"], f"{name} summary status"), f"{name} summary status")]
        note(_texts(s.get("warnings"), f"{name} summary warnings"))
        note(_texts(s.get("info"), f"{name} summary info"))
    if not results:
        raise ParseError(f"dcgmi diag JSON: test {name!r} has no status")
    return DcgmTest(name, category, _worst(results), gpus, messages)


def _json_run(doc: dict) -> DcgmDiag:
    key = "DCGM Diagnostic" if "DCGM Diagnostic" in doc else "DCGM GPU Diagnostic"
    diag = _obj(doc[key], key)
    tests: list[DcgmTest] = []
    for cat in _list(diag.get("test_categories"), "test_categories"):
        cat = _obj(cat, "a test category")
        category = cat.get("category")
        category = _str(category, "category") if category is not None else None
        for t in _list(cat.get("tests"), "tests"):
            tests.append(_json_test(t, category))
    meta = doc.get("metadata")
    meta = _obj(meta, "metadata") if meta is not None else {}
    version = meta.get("version", diag.get("version", doc.get("version")))
    driver = meta.get("Driver Version Detected", diag.get("Driver Version Detected",
                                                          doc.get("Driver Version Detected")))
    error = None
    for where in (diag, doc):
        if where.get("runtime_error"):
            error = _str(where["runtime_error"], "runtime_error")
    for where in (diag, doc):
        errs = _texts(where.get("errors"), "errors") if isinstance(where.get("errors"), (list, str)) else []
        if errs and error is None:
            error = "; ".join(errs)
    return DcgmDiag(None, tests, error is None, error,
                    version if isinstance(version, str) else None,
                    driver if isinstance(driver, str) else None)


# --- dcgmi health -c --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DcgmHealth:
    """`dcgmi health -c`: the overall verdict and one line per incident ("GPU 0: PCIe system: Warning - ...")."""

    overall: str
    incidents: list[str]

    @property
    def healthy(self) -> bool:
        return self.overall.lower() == "healthy" and not self.incidents


def parse_dcgm_health(text: str) -> DcgmHealth:
    """Parse the Health Monitor Report box of `dcgmi health -c` (text); ParseError for anything else."""
    check_size(text, "dcgmi health output")
    overall: str | None = None
    incidents: list[str] = []
    entity: str | None = None
    parts: list[str] = []
    saw_header = False

    def flush() -> None:
        nonlocal parts
        if entity is not None and parts:
            incidents.append(f"{entity}: {' '.join(parts)}")
        parts = []

    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip() or _is_border(line, "-") or _is_border(line, "="):
            continue
        if not saw_header:
            if line.startswith("|") and line.endswith("|") and line[1:-1].strip() == "Health Monitor Report":
                saw_header = True
                continue
            raise ParseError("not `dcgmi health -c` output: expected the 'Health Monitor Report' header", no, raw)
        row = _row(line)
        if row is None:
            raise ParseError("expected a '| name | value |' row of the health report", no, raw)
        name, value = row[0], row[1].strip()
        if name == "Overall Health":
            overall = value
        elif name:
            flush()
            entity = name.replace("GPU ID: ", "GPU ")
            if value.lower() not in ("healthy", "warning", "failure", "fail", "pass"):
                parts.append(value)
        elif entity is not None:
            parts.append(value)
        else:
            raise ParseError("a health report row with no GPU above it", no, raw)
    flush()
    if overall is None:
        raise ParseError("not `dcgmi health -c` output: no 'Overall Health' row")
    return DcgmHealth(overall, incidents)
