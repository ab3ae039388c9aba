"""Every output of one run, written at its end: each on its own, each whole or not at all, none lost in silence.

The run collector (hilt/pytestplugin/collector.py) collects; this module writes. Each writer lives beside its
format (summary, prometheus, allure_env, junit; the history store) and writes its file atomically
(hilt.util.atomic_file). One failing writer costs no other output, and every failure becomes an
``OutputProblem`` in the record, which the console, summary.md and summary.json show: a full disk makes the run
inconclusive (its reports cannot be trusted whole), a history store that did not answer names the command that
recovers the run from summary.json. A writer that crashes (an exception no disk or store raises: a bug) is a
crash in hilt's own code, as docs/ci.md says one ends: its traceback on stderr, ``internal_error`` in the
record, exit 3; the other outputs are still written and say so.

Order: the outputs that do not carry the verdict first (JUnit properties, the Allure environment), then the
verdict is decided, then metrics.prom, summary.md, summary.json and the history append last. The verdict is
decided again before each, and an output written before a later one failed is written again when what it says
went stale (summary.md and summary.json name the history's failure and its recovery command; none of them
says PASS after a full disk cost another file).
"""

from __future__ import annotations

import shlex
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hilt.errors import HiltError
from hilt.record.run_record import OutputProblem, RunRecord, disk_full_line, internal_error_line
from hilt.report.allure_env import write_categories, write_environment
from hilt.report.junit import add_junit_properties, is_whole, junit_properties
from hilt.report.prometheus import write_metrics_prom
from hilt.report.summary import write_summary_json, write_summary_md
from hilt.util.atomic_file import DISK_FULL, OutputError, is_disk_full
from hilt.util.url_password import redact


@dataclass
class RunOutputs:
    """Where one run's outputs go."""

    reports_dir: Path
    junit_path: Path | None = None
    allure_dir: Path | None = None
    history: str | Path | None = None  # None: no history append (HILT_NO_HISTORY, a rollout's wave)
    history_password: object | None = None  # hilt.rig.config.Secret: a reference, resolved when connecting
    rigs_file: Path | None = None  # for the recovery command: `hilt history import` reads the history from it


def write_run_outputs(record: RunRecord, outputs: RunOutputs, decide: Callable[[], None],
                      junit_error: BaseException | None = None) -> list[OutputProblem]:
    """Write every output; return the problems met (also added to ``record.output_problems``).

    ``decide`` (re)computes ``record.gate`` and ``record.exit_code`` from the record; ``junit_error`` is what
    pytest's own JUnit writer raised, if it did (it writes junit.xml in place, before this runs). An output
    written before a later one failed is written again when what it says went stale: summary.md and
    summary.json must name every problem and carry the final verdict, metrics.prom and the history the final
    verdict. An output that failed once is not retried (a full disk stays full).
    """
    problems: list[OutputProblem] = []

    def attempt(output: str, path: Path | str | None, write: Callable[[], object]) -> bool:
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - each output on its own; every failure is recorded
            problems.append(_problem(output, path, exc))
            record.output_problems.append(problems[-1])
            if is_bug(exc):
                traceback.print_exception(exc, file=sys.stderr)  # the one line in the record is no bug report
                record.internal_error = record.internal_error or internal_error_line(exc)
            if output == "history":
                problems[-1].recover = recover_command(outputs.reports_dir / "summary.json", outputs.rigs_file)
            return False
        return True

    if outputs.junit_path is not None:
        _check_junit(record, outputs.junit_path, junit_error, problems)
        if outputs.junit_path.exists():
            attempt("junit.xml", outputs.junit_path,
                    lambda: add_junit_properties(outputs.junit_path, junit_properties(record)))
    if outputs.allure_dir is not None:
        attempt("allure-results", outputs.allure_dir / "environment.properties",
                lambda: write_environment(outputs.allure_dir, record))
        attempt("allure-results", outputs.allure_dir / "categories.json", lambda: write_categories(outputs.allure_dir))

    reports = outputs.reports_dir
    # (output, path, writer, whether it shows the problems as well as the verdict)
    carriers: list[tuple[str, Path | str, Callable[[], object], bool]] = [
        ("metrics.prom", reports / "metrics.prom", lambda: write_metrics_prom(record, reports / "metrics.prom"), False),
        ("summary.md", reports / "summary.md", lambda: write_summary_md(record, reports), True),
        ("summary.json", reports / "summary.json", lambda: write_summary_json(record, reports), True),
    ]
    if outputs.history is not None:  # last: the stored run carries every problem its summary does
        carriers.append(("history", _location(outputs), lambda: _append(record, outputs), False))

    def says() -> tuple[object, ...]:
        return (record.gate.outcome if record.gate else None, record.exit_code, len(record.output_problems))

    written: dict[str, tuple[object, ...]] = {}
    failed: set[str] = set()
    for _ in range(3):
        for output, path, write, full in carriers:
            decide()
            now = says() if full else says()[:2]
            if output in failed or written.get(output) == now:
                continue
            if attempt(output, path, write):
                written[output] = now
            else:
                failed.add(output)
        decide()
        if all(o in failed or written.get(o) == (says() if full else says()[:2]) for o, _, _, full in carriers):
            break
    return problems


def is_bug(exc: BaseException) -> bool:
    """An exception that no disk, file system, history store or bad input raises (they raise OSError or a
    HiltError): a crash in hilt's own code. The run then ends as docs/ci.md says a crash ends (exit 3, the
    traceback on stderr, ``internal_error``), never with the verdict of a run whose outputs were merely lost."""
    return is_disk_full(exc) is None and not isinstance(exc, (OSError, HiltError))


def _check_junit(record: RunRecord, path: Path, error: BaseException | None, problems: list[OutputProblem]) -> None:
    """pytest's JUnit writer failed, or left a file that does not parse: the file goes, the problem is said."""
    if error is None and (not path.exists() or is_whole(path)):
        return
    cause = error if error is not None else OSError(0, "the file pytest wrote does not parse (cut short)")
    try:
        path.unlink(missing_ok=True)  # a cut junit.xml is no report; a CI job must not read it as one
    except OSError:
        pass
    problems.append(_problem("junit.xml", path, cause))
    record.output_problems.append(problems[-1])


def _problem(output: str, path: Path | str | None, exc: BaseException) -> OutputProblem:
    full = is_disk_full(exc)
    if isinstance(exc, OutputError):
        return OutputProblem(output=output, path=exc.path, error=exc.reason, disk_full=exc.disk_full)
    if full is not None:
        return OutputProblem(output=output, path=str(full.filename or path), error=full.strerror or str(full),
                             disk_full=True)
    if isinstance(exc, OSError) and exc.errno not in (None, 0) and exc.strerror:
        return OutputProblem(output=output, path=str(exc.filename or path), error=exc.strerror,
                             disk_full=exc.errno in DISK_FULL)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not isinstance(exc, HiltError):
        text = f"{type(exc).__name__}: {text}"
    shown = None if isinstance(exc, HiltError) and path is not None and str(path) in text else path
    return OutputProblem(output=output, path=str(shown) if shown is not None else None, error=text)


def _location(outputs: RunOutputs) -> str:
    """The history's path, or its URL without a password (rigs.yaml refuses one there, but never show it)."""
    text = str(outputs.history)
    return redact(text) if "://" in text else text


def _append(record: RunRecord, outputs: RunOutputs) -> None:
    from hilt.history.open import open_history

    open_history(outputs.history, outputs.history_password).append(record)  # type: ignore[arg-type]


def recover_command(summary: Path, rigs_file: Path | None) -> str:
    """The command that appends this run to the history once it answers again (`hilt history import`)."""
    command = f"hilt history import {shlex.quote(str(summary.resolve()))}"
    if rigs_file is not None and Path(rigs_file).resolve() != Path("rigs.yaml").resolve():
        command = f"HILT_RIGS={shlex.quote(str(Path(rigs_file).resolve()))} {command}"
    return command


def problem_lines(problems: list[OutputProblem]) -> list[str]:
    """What the console says, one line per cause: a full disk is one line naming the first file it cost."""
    full = disk_full_line(problems)
    lines = [f"{full}; the run is INCONCLUSIVE"] if full else []
    return lines + [p.line() for p in problems if not p.disk_full]
