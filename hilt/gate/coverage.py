"""Coverage: which gated baseline entries a run owes a verdict on, and which of them it measured.

A gate that measured nothing must not pass. Before the probes run, the session knows each node's profile and
so the gated entries it must judge: per node (entries for one node) and for the lease (entries for as many
nodes as the lease holds, when every node shares the profile; a mixed lease has no common baseline, so its
lease-wide entries are named as ungated instead). At the end every such entry is either judged by a
measurement of that node (or of the lease) or named as not measured, with the reason a person can act on.
Pure: records in, records out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hilt.gate.baselines import BaselineEntry, BaselineSet
from hilt.probes.plan import PlannedMetric
from hilt.record.metrics import Metric
from hilt.record.run_record import CoverageEntry, CoverageRecord, MetricRecord, NodeRecord, TestRecord


def _entry_nodes(entry: BaselineEntry) -> str | None:
    return entry.labels.get("nodes")


def _gated(bset: BaselineSet, entry: BaselineEntry) -> bool:
    return bset.is_gated(Metric.of(entry.metric, entry.unit, [], entry.labels))


def expected_entries(node_profiles: Mapping[str, str], baselines: Mapping[str, BaselineSet | None],
                     lease_ungated: str | None = None) -> CoverageRecord:
    """The gated entries the run owes a verdict on, before anything is measured.

    An entry naming ``nodes: 1`` (or no ``nodes`` label) is owed by every node of its profile; one naming as
    many nodes as the lease holds is owed by the lease when all nodes share that profile. Entries for another
    node count cannot be measured by this lease and are not expected. ``lease_ungated``: why this run judges no
    lease-wide metric (a rollout's wave mixes the old and the new image); its lease entries are named as ungated.
    """
    record = CoverageRecord()
    lease_size = len(node_profiles)
    for node, profile in node_profiles.items():
        bset = baselines.get(profile)
        if bset is None:
            continue
        for entry in bset.entries:
            if _gated(bset, entry) and _entry_nodes(entry) in (None, "1"):
                record.entries.append(CoverageEntry(profile=profile, metric=entry.metric, labels=dict(entry.labels),
                                                    scope="node", node=node))
    profiles = sorted(set(node_profiles.values()))
    if lease_size < 2:
        return record
    for profile in profiles:
        bset = baselines.get(profile)
        if bset is None:
            continue
        for entry in bset.entries:
            if not _gated(bset, entry) or _entry_nodes(entry) != str(lease_size):
                continue
            if lease_ungated is not None:
                record.ungated.append(f"{profile}: {entry.key}: lease-wide, not gated: {lease_ungated}")
            elif len(profiles) == 1:
                record.entries.append(CoverageEntry(profile=profile, metric=entry.metric, labels=dict(entry.labels),
                                                    scope="lease"))
            else:
                record.ungated.append(f"{profile}: {entry.key}: lease-wide, but the lease mixes profiles "
                                      f"{', '.join(profiles)}: no shared baseline, not gated")
    return record


def _matches(entry: CoverageEntry, metric: MetricRecord) -> bool:
    if metric.name != entry.metric or metric.verdict is None:
        return False
    if any(metric.labels.get(k) != v for k, v in entry.labels.items()):
        return False
    if metric.profile is not None and metric.profile != entry.profile:
        return False
    if entry.scope == "node":
        return metric.node == entry.node
    return metric.node is None


def _declares(declared: Sequence[str], metric: str) -> bool:
    """A probe's marker names the metric, or its family (``nccl.`` covers ``nccl.all_reduce.busbw``)."""
    return any(metric == name or (name.endswith(".") and metric.startswith(name)) for name in declared)


def _probes_for(entry: CoverageEntry, tests: Sequence[TestRecord]) -> tuple[list[TestRecord], bool]:
    """The probes that ran where ``entry`` is owed (its node, or the lease) and measure its metric: those whose
    marker declares it, else those that declare nothing (they might). The flag: they declared it."""
    here = [t for t in tests if t.probe is not None
            and (t.node == entry.node if entry.scope == "node" else t.node is None)]
    declaring = [t for t in here if _declares(t.probe or (), entry.metric)]
    return (declaring, True) if declaring else ([t for t in here if not t.probe], False)


def _test_name(nodeid: str) -> str:
    """The test as a person finds it in the suite: its function, without the node parameter (the entry names it)."""
    return nodeid.split("::")[-1].split("[", 1)[0]


def _plan_gap(entry: CoverageEntry, planned: Sequence[PlannedMetric]) -> str | None:
    """Why the plan cannot yield ``entry`` (the label it lacks), or None when it can (or nothing is known)."""
    same = [p for p in planned if p.name == entry.metric]
    if not planned:
        return None
    if not same:
        return None  # a probe the plan does not describe (e.g. nvbandwidth): the plan cannot say it is missing
    for p in same:
        if all(p.labels.get(k, v) == v for k, v in entry.labels.items()):
            return None
    for key, value in sorted(entry.labels.items()):
        offered = sorted({p.labels[key] for p in same if key in p.labels}, key=lambda v: (len(v), v))
        if offered and value not in offered:
            return f"{key}={value} is not in the probe plan ({key} {', '.join(offered)})"
    return "the probe plan does not yield these labels"


def _why(entry: CoverageEntry, nodes: Mapping[str, NodeRecord], tests: Sequence[TestRecord],
         planned: Sequence[PlannedMetric], measured: Sequence[MetricRecord],
         unfinished: Mapping[str, str] | None = None) -> str:
    targets = [entry.node] if entry.node else list(nodes)
    for name in targets:
        rec = nodes.get(name)
        if rec is not None and not rec.booted:
            return f"node {name} not booted: {rec.error or 'no reason recorded'}"
    gap = _plan_gap(entry, planned)
    if gap:
        return gap
    where = f"node {entry.node}" if entry.scope == "node" else "the lease"
    probes, declared = _probes_for(entry, tests)
    if not probes:
        if unfinished:  # an interrupted run: what would have measured it was cut off or never started
            cut = [f"{_test_name(t)} {why}" for t, why in unfinished.items()]
            more = f"; and {len(cut) - 3} more" if len(cut) > 3 else ""
            return f"no probe of {entry.metric} ran on {where}: the run was stopped first ({'; '.join(cut[:3])}{more})"
        return f"no probe of {entry.metric} ran on {where} (none selected)"
    names = ", ".join(sorted({_test_name(t.nodeid) for t in probes}))
    maybe = "" if declared else ", which may measure it (its probe marker names no metric),"
    for t in probes:
        name = _test_name(t.nodeid)
        if t.outcome == "skipped":
            return f"probe {name}{maybe} skipped: {t.message or 'no reason given'}"
        if t.outcome in ("error", "failed"):
            what = "errored" if t.outcome == "error" else "failed"
            first = (t.message or "").splitlines()[0] if t.message else "no message"
            return f"probe {name}{maybe} {what} before measuring it: {first}"
    seen = sorted({m.labels.get("size", "?") for m in measured if m.name == entry.metric
                   and (entry.scope == "lease" or m.node == entry.node)}, key=lambda v: (len(v), v))
    if seen:
        return f"no measurement with these labels (measured {entry.metric} at size {', '.join(seen)})"
    if not declared:
        return (f"no probe that ran on {where} declares {entry.metric} (@pytest.mark.probe(\"{entry.metric}\")), "
                f"and {names} did not measure it")
    return f"probe {names} ran on {where} and recorded no {entry.metric}"


def judge_coverage(expected: CoverageRecord, metrics: Sequence[MetricRecord], tests: Sequence[TestRecord],
                   nodes: Sequence[NodeRecord],
                   plans: Mapping[str | None, Sequence[PlannedMetric]] | None = None,
                   unfinished: Mapping[str, str] | None = None) -> CoverageRecord:
    """Each expected entry judged (with the outcome of the measurement that judged it) or named with why not.

    ``plans``: what each node's probe plan yields (key None: the lease's plan), to say "not in the plan".
    ``unfinished``: tests of an interrupted run that left no result, each with why ("was cut off by SIGINT").
    """
    by_node = {n.name: n for n in nodes}
    plans = plans or {}
    out = CoverageRecord(gate_run=expected.gate_run, ungated=list(expected.ungated))
    for entry in expected.entries:
        hits = [m for m in metrics if _matches(entry, m)]
        if hits:
            worst = _worst([m.verdict.outcome for m in hits if m.verdict is not None])
            out.entries.append(entry.model_copy(update={"measured": True, "outcome": worst, "why": None}))
            continue
        why = _why(entry, by_node, tests, plans.get(entry.node if entry.scope == "node" else None, ()), metrics,
                   unfinished)
        out.entries.append(entry.model_copy(update={"measured": False, "outcome": None, "why": why}))
    return out


_RANK = {"regression": 0, "inconclusive": 1, "unbaselined": 2, "pass": 3, "improvement": 4, "not_run": 5}


def _worst(outcomes: Sequence[str]):  # noqa: ANN202 - a GateOutcome
    return min(outcomes, key=lambda o: _RANK.get(o, 9)) if outcomes else None


def plan_gaps(bset: BaselineSet, planned: Sequence[PlannedMetric], nodes: int = 1) -> list[str]:
    """The gated entries of ``bset`` for ``nodes`` nodes that ``planned`` cannot measure, each with why.

    What `hilt rigs check` reports before a run: a plan that misses a gated size is a gate that can only end
    inconclusive.
    """
    problems = []
    for entry in bset.entries:
        if not _gated(bset, entry):
            continue
        entry_nodes = _entry_nodes(entry)
        if (nodes == 1 and entry_nodes not in (None, "1")) or (nodes > 1 and entry_nodes != str(nodes)):
            continue
        probe = CoverageEntry(profile=bset.profile, metric=entry.metric, labels=dict(entry.labels))
        gap = _plan_gap(probe, planned) if planned else f"the probe plan measures no {entry.metric}"
        if gap:
            problems.append(f"{entry.key}: {gap}")
    return problems
