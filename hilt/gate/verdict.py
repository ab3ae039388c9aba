"""The run's verdict and exit code: decided here, once, from what the run recorded.

The collector (:mod:`hilt.runlog`) records tests, metrics and coverage; it does not judge. Order of the rules
(docs/gate.md): a known product failure or a regressed gated metric decides ``regression`` (do not ship) even
when other parts of the rig failed; otherwise anything that leaves the gate without evidence (an
infrastructure error, a node that did not boot, an undecided or unbaselined gated metric, a gated entry that
was never measured, a profile with no gated entry at all) makes it ``inconclusive``; only a run that judged
every gated entry within tolerance passes. A run that is not a gate (plain pytest, no probe selected) has no
gate verdict: its exit code follows its tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from hilt.exitcodes import ExitCode
from hilt.record.run_record import (
    CoverageRecord,
    MetricRecord,
    RunRecord,
    TestRecord,
    VerdictRecord,
    disk_full_line,
)

_PASSTHROUGH = (ExitCode.INTERRUPTED, ExitCode.INTERNAL_ERROR, ExitCode.USAGE_ERROR)


def _plural(n: int, word: str, suffix: str = "s") -> str:
    return f"{n} {word}{suffix * (n != 1)}"


def _where(metric: MetricRecord) -> str:
    return f"node {metric.node}" if metric.node else "lease"


def _first(items: Sequence[str], limit: int = 3) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _test_failures(tests: Sequence[TestRecord]) -> tuple[list[TestRecord], list[TestRecord], list[TestRecord]]:
    """(product failures, infrastructure errors, undecided tests). A regression is the metric's, not the test's."""
    product = [t for t in tests if t.outcome == "failed" and t.kind in ("product", "none")]
    infra = [t for t in tests if t.outcome == "error" and t.kind in ("infrastructure", "none")]
    undecided = [t for t in tests if t.kind == "undecided"]
    return product, infra, undecided


def _test_name(t: TestRecord) -> str:
    name = t.nodeid.split("::")[-1]
    return f"{name} on node {t.node}" if t.node and f"[{t.node}]" not in name else name


def run_verdict(record: RunRecord, pytest_status: int = 0, *, session_error: str | None = None,
                allow_ungated: bool = False, history_required: bool = False) -> tuple[VerdictRecord, int]:
    """The run's gate verdict and the process exit code (docs/ci.md, "How a run ends"), from the record alone.

    A run that did not end on its own decides nothing about the image: interrupted by a signal, its lease lost
    (the nodes were no longer ours), or its reports not written whole (a full disk) is inconclusive (exit 6)
    whatever its tests said, and says why first. A crash in hilt's own code keeps pytest's exit 3. A history
    append that failed leaves the verdict alone (the image was judged; summary.json holds the run and the
    console names the command that recovers it) unless ``history_required`` (a nightly job) makes it exit 6.
    """
    cut_short = _cut_short(record, history_required)
    if cut_short:
        judged = _decide(record, session_error, allow_ungated)
        reason = "; ".join(cut_short)
        if judged.outcome == "regression":
            reason += f"; before that: {judged.reason}"
        verdict = VerdictRecord(outcome="inconclusive", reason=reason, gated=judged.gated)
        if record.internal_error and not (record.interrupted or record.lease_lost or _disk_full(record)):
            return verdict, int(ExitCode.INTERNAL_ERROR)
        return verdict, int(ExitCode.INCONCLUSIVE)
    verdict = _decide(record, session_error, allow_ungated)
    if pytest_status in _PASSTHROUGH:
        return verdict, int(pytest_status)
    if verdict.outcome == "regression":
        return verdict, int(ExitCode.FAILED)
    if verdict.outcome == "inconclusive":
        return verdict, int(ExitCode.INCONCLUSIVE)
    if any(t.outcome == "failed" for t in record.tests):
        return verdict, int(ExitCode.FAILED)
    if verdict.outcome == "not_run" and any(t.outcome == "error" for t in record.tests):
        return verdict, int(ExitCode.INCONCLUSIVE)
    if not record.tests:
        return verdict, int(ExitCode.NO_TESTS)
    return verdict, int(ExitCode.PASS)


def _disk_full(record: RunRecord) -> str | None:
    return disk_full_line(record.output_problems)


def _cut_short(record: RunRecord, history_required: bool) -> list[str]:
    """Why this run's results cannot decide the gate, most telling first; empty when they can."""
    why = []
    if record.interrupted is not None:
        why.append(record.interrupted.line())
    if record.lease_lost:
        why.append(f"{record.lease_lost}; the nodes were no longer ours, so nothing measured after it is judged")
    full = _disk_full(record)
    if full:
        why.append(f"reports not written whole: {full}")
    if history_required:
        why += [f"history required (--history-required): {p.line()}" for p in record.output_problems
                if p.output == "history"]
    if record.internal_error:
        why.append(f"hilt internal error: {record.internal_error}")
    return why


def _decide(record: RunRecord, session_error: str | None, allow_ungated: bool) -> VerdictRecord:
    if session_error:
        return VerdictRecord(outcome="inconclusive", reason=f"infrastructure: {session_error}")
    coverage = record.coverage or CoverageRecord()
    product, infra, undecided = _test_failures(record.tests)
    if not coverage.gate_run:
        failed = _plural(len(product), "test") + " failed" if product else "all tests passed"
        return VerdictRecord(outcome="not_run", gated=False,
                             reason=f"gate: not run (no probe selected; pass --gate to gate this run); {failed}")
    gated = [m for m in record.metrics if m.verdict is not None and m.verdict.gated]
    regressed = [m for m in gated if m.verdict.outcome == "regression"]  # type: ignore[union-attr]
    if regressed or product:
        parts = []
        if regressed:
            parts.append(_plural(len(regressed), "regressed metric") + ": " + _first(
                [f"{_where(m)}: {m.verdict.reason}" for m in regressed]))  # type: ignore[union-attr]
        if product:
            parts.append(_plural(len(product), "product failure") + ": " + _first(
                [f"{_test_name(t)}: {(t.message or '').splitlines()[0] if t.message else 'failed'}"
                 for t in product]))
        return VerdictRecord(outcome="regression", reason="; ".join(parts))

    problems = []
    down = [n for n in record.nodes if not n.booted]
    if down:
        problems.append(_plural(len(down), "node") + " not booted: " + ", ".join(n.name for n in down))
    if infra:
        problems.append(_plural(len(infra), "infrastructure error") + " (the rig, not the image, failed): "
                        + _first([f"{_test_name(t)}: {(t.message or '').splitlines()[0] if t.message else ''}"
                                  for t in infra], 2))
    unsure = [m for m in gated if m.verdict.outcome == "inconclusive"  # type: ignore[union-attr]
              or (m.verdict.outcome == "unbaselined" and m.verdict.failed)]  # type: ignore[union-attr]
    if unsure:
        problems.append(_plural(len(unsure), "gated metric") + " undecided: "
                        + _first([f"{_where(m)}: {m.verdict.reason}" for m in unsure], 2))  # type: ignore[union-attr]
    elif undecided:
        problems.append(_plural(len(undecided), "test") + " undecided: "
                        + _first([t.message or _test_name(t) for t in undecided], 2))
    missing = [e for e in coverage.entries if not e.measured]
    if missing:
        problems.append(f"{coverage.line()}; not measured: "
                        + _first([f"{e.key} ({e.why})" for e in missing]))
    if not coverage.entries and not allow_ungated:
        problems.append("no gated baseline entries for this rig's profiles: nothing to judge "
                        "(add gated entries, or pass --allow-ungated to accept a run without a gate)")
    if problems:
        return VerdictRecord(outcome="inconclusive", reason="; ".join(problems))

    improved = [m for m in gated if m.verdict.outcome == "improvement"]  # type: ignore[union-attr]
    allowed = [m for m in gated if m.verdict.outcome == "unbaselined"]  # type: ignore[union-attr]
    if not coverage.entries:
        reason = "all tests passed; no gated entries (allowed by --allow-ungated)"
    else:
        reason = f"all tests passed; {coverage.line()}, every one within tolerance"
    if improved:
        reason += (f"; {len(improved)} improved (consider `hilt baseline promote`): "
                   + ", ".join(_key(m) for m in improved[:3]))
    if allowed:
        reason += f"; {len(allowed)} without baseline (allowed)"
    if coverage.ungated:
        n = len(coverage.ungated)
        reason += f"; {n} lease-wide entr{'y' if n == 1 else 'ies'} not gated"  # why: coverage.ungated
    return VerdictRecord(outcome="pass", reason=reason)


def _key(m: MetricRecord) -> str:
    inner = ",".join(f"{k}={v}" for k, v in sorted(m.labels.items()))
    return f"{m.name}{{{inner}}}"
