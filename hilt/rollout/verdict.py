"""A wave's verdict, from its gate run's record alone: each gated metric of each new node judged against the
stored baseline (the run's own verdict) and against the control group (the nodes still on the old image,
measured in the same run); the wave passes only when both pass everywhere.

Pure: the record in, checks and one outcome out, so the rules are tested without a rack. The order of the rules
is the gate's (hilt/gate/verdict.py): a regression or a product failure on a new node decides ``regression``
even when something else broke; anything that leaves a comparison without evidence makes it ``inconclusive``.
Lease-wide metrics are not judged: a lease that mixes the old and the new image measures neither.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hilt.gate.canary import judge_against_control
from hilt.gate.judge import Baseline, Verdict
from hilt.record.run_record import MetricRecord, RunRecord
from hilt.rollout.state import Check

ControlJudge = Callable[[Baseline, Sequence[float], Sequence[float]], Verdict]


@dataclass(frozen=True)
class WaveVerdict:
    outcome: str  # pass | regression | inconclusive
    reason: str
    checks: list[Check]
    look_again: bool = False  # inconclusive only because canary vs control needs more samples: measure again


def _key(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}" if inner else name


def series_labels(record: RunRecord, metric: MetricRecord) -> dict[str, str]:
    """The labels that name the gated series: those of the baseline entry the metric was judged by (coverage),
    never the node's own (``node``, and versions that differ between the old and the new image)."""
    for entry in record.coverage.entries if record.coverage else []:
        if (entry.scope == "node" and entry.node == metric.node and entry.metric == metric.name
                and all(metric.labels.get(k) == v for k, v in entry.labels.items())):
            return dict(entry.labels)
    return {k: v for k, v in metric.labels.items() if k != "node"}


def _covers(labels: dict[str, str], metric: MetricRecord) -> bool:
    return all(metric.labels.get(k) == v for k, v in labels.items())


def _baseline(metric: MetricRecord, labels: dict[str, str]) -> Baseline | None:
    b = metric.baseline
    if b is None:
        return None
    return Baseline(metric=metric.name, value=b.value, tolerance=b.tolerance, higher_is_better=b.higher_is_better,
                    samples=b.samples, labels=labels, unit=metric.unit)


def _ratio(metric: MetricRecord) -> float | None:
    if metric.baseline is None or not metric.samples:
        return None
    return sum(metric.samples) / len(metric.samples) / metric.baseline.value


def _first(items: Sequence[str], limit: int = 3) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _regression_lines(regressions: Sequence[Check], control: Sequence[str]) -> list[str]:
    """One short line per series and node: ``nccl.all_reduce.busbw{size=67108864} on node1: -38.8% vs baseline,
    -39.0% vs control (node2, node3, node4)``; the full reasons stay in the checks."""
    by: dict[tuple[str, str], list[str]] = {}
    for c in regressions:
        change = f"{(c.ratio - 1) * 100:+.1f}% " if c.ratio is not None and c.ratio == c.ratio else ""
        where = f"control ({', '.join(control)})" if c.against == "control" else "baseline"
        by.setdefault((c.metric, c.node), []).append(f"{change}vs {where}")
    return [f"{metric} on {node}: {', '.join(parts)}" for (metric, node), parts in by.items()]


def _default_control_judge() -> ControlJudge:
    return judge_against_control


def _gated(record: RunRecord) -> list[MetricRecord]:
    return [m for m in record.metrics if m.verdict is not None and m.verdict.gated and m.node is not None]


def wave_verdict(record: RunRecord, nodes: Sequence[str], control: Sequence[str], *,
                 judge_control: ControlJudge | None = None, run_exit: int = 0,
                 earlier: Sequence[RunRecord] = ()) -> WaveVerdict:
    """Judge the wave whose new nodes are ``nodes``; ``control`` may be empty (the last wave has no node left
    on the old image: it is judged against the baseline only, and says so).

    ``earlier``: the wave's previous gate runs (looks), whose samples join this run's in the comparison with the
    control group (each look measures both groups in its own window); the baseline verdicts are this run's.
    """
    new, old = set(nodes), set(control)
    gated = _gated(record)
    past = [(r, m) for r in earlier for m in _gated(r)]
    checks: list[Check] = []
    regressions: list[Check] = []
    unsure: list[str] = []
    control_unsure = 0

    for m in gated:
        if m.node in new:
            assert m.verdict is not None
            outcome = m.verdict.outcome
            check = Check(metric=_key(m.name, series_labels(record, m)), node=m.node, against="baseline",
                          outcome=outcome, reason=m.verdict.reason, ratio=_ratio(m))
            checks.append(check)
            if outcome == "regression":
                regressions.append(check)
            elif outcome == "inconclusive" or (outcome == "unbaselined" and m.verdict.failed):
                unsure.append(f"node {m.node}: vs baseline: {m.verdict.reason}")

    if old:
        judge = judge_control or _default_control_judge()
        every = [(record, m) for m in gated] + past
        controls = [m for _r, m in every if m.node in old]
        for m in gated:
            if m.node not in new:
                continue
            labels = series_labels(record, m)
            key = _key(m.name, labels)
            baseline = _baseline(m, labels)
            if baseline is None:
                continue  # unbaselined: the baseline check says so; there is no tolerance to compare with
            canary = [s for r, c in every if c.node == m.node and c.name == m.name
                      and series_labels(r, c) == labels for s in c.samples]
            samples = [s for c in controls if c.name == m.name and _covers(labels, c) for s in c.samples]
            if not samples:
                check = Check(metric=key, node=m.node, against="control", outcome="inconclusive",
                              reason=f"{key}: not measured on the control group ({', '.join(sorted(old))})")
            else:
                v = judge(baseline, canary, samples)
                check = Check(metric=key, node=m.node, against="control", outcome=v.outcome,
                              reason=f"{v.reason} (control: {', '.join(sorted(old))})", ratio=v.ratio)
            checks.append(check)
            if check.outcome == "regression":
                regressions.append(check)
            elif check.outcome == "inconclusive":
                unsure.append(f"node {m.node}: vs control: {check.reason}")
                control_unsure += bool(samples)

    product = [t for t in record.tests if t.outcome == "failed" and t.kind in ("product", "none")
               and t.node in new]
    failures = [f"{t.nodeid.split('::')[-1]} on node {t.node}: "
                f"{(t.message or 'failed').splitlines()[0] if t.message else 'failed'}" for t in product]
    if regressions or failures:
        parts = []
        if regressions:
            parts.append(_first(_regression_lines(regressions, sorted(old))))
        if failures:
            parts.append("failed: " + _first(failures))
        return WaveVerdict("regression", "; ".join(parts), checks)

    problems = []
    involved = new | old
    down = [n.name for n in record.nodes if n.name in involved and not n.booted]
    if down:
        problems.append("not booted: " + ", ".join(down))
    infra = [t for t in record.tests if t.outcome == "error" and (t.node in involved or t.node is None)]
    if infra:
        problems.append(f"{len(infra)} infrastructure error(s): " + _first(
            [f"{t.nodeid.split('::')[-1]}: {(t.message or '').splitlines()[0] if t.message else ''}" for t in infra],
            2))
    missing = [e for e in (record.coverage.entries if record.coverage else [])
               if e.scope == "node" and e.node in involved and not e.measured]
    if missing:
        problems.append("not measured: " + _first([f"{e.key} ({e.why})" for e in missing]))
    if unsure:
        problems.append(f"{len(unsure)} undecided: " + _first(unsure, 2))
    if not any(c.against == "baseline" for c in checks):
        problems.append("no gated metric measured on the new nodes: nothing to judge (select the probes)")
    if run_exit not in (0, 1, 6):
        problems.append(f"the gate run ended with exit {run_exit}")
    if problems:
        only_control = len(problems) == 1 and bool(unsure) and control_unsure == len(unsure)
        return WaveVerdict("inconclusive", "; ".join(problems), checks, look_again=only_control)
    n_base = sum(c.against == "baseline" for c in checks)
    n_ctrl = sum(c.against == "control" for c in checks)
    vs = (f"and {n_ctrl} against the control group ({', '.join(sorted(old))})" if old
          else "(no control group: every other node already runs the image)")
    return WaveVerdict("pass", f"{n_base} checks against the baseline {vs}, all within tolerance", checks)
