"""A wave's verdict from its gate run's record: the new nodes against the baseline and against the control group."""

from __future__ import annotations

from hilt.record.run_record import (
    BaselineRecord,
    CoverageEntry,
    CoverageRecord,
    MetricRecord,
    NodeRecord,
    RunRecord,
    VerdictRecord,
)
from hilt.record.run_record import TestRecord as RunTest
from hilt.rollout.verdict import wave_verdict

LABELS = {"backend": "gloo", "size": "16777216", "nodes": "1"}
KEY = "torch.all_reduce.busbw{backend=gloo,nodes=1,size=16777216}"


def _metric(node: str, samples: list[float], outcome: str) -> MetricRecord:
    # as the probes label them: the node's name, and versions that differ between the old and the new image
    labels = LABELS | {"node": node, "nccl_version": "2.21.5" if node == "node1" else "2.19.3"}
    return MetricRecord(name="torch.all_reduce.busbw", unit="GB/s", labels=labels, samples=samples, node=node,
                        baseline=BaselineRecord(value=1.0, tolerance=0.15),
                        verdict=VerdictRecord(outcome=outcome, reason=f"{KEY}: {outcome}: on {node}"))


def _record(metrics, tests=(), nodes=("node1", "node2", "node3")) -> RunRecord:
    entries = [CoverageEntry(profile="sim-4gpu", metric="torch.all_reduce.busbw", labels=LABELS, node=n,
                             measured=any(m.node == n for m in metrics)) for n in nodes]
    return RunRecord(run_id="r1", started_at="2026-03-01T02:00:00Z", rig="sim",
                     nodes=[NodeRecord(name=n) for n in nodes], metrics=list(metrics), tests=list(tests),
                     coverage=CoverageRecord(entries=entries))


GOOD = [1.0, 1.01, 0.99, 1.0]
SLOW = [0.6, 0.61, 0.59, 0.6]


def test_canary_like_the_control_and_the_baseline_passes():
    record = _record([_metric("node1", GOOD, "pass"), _metric("node2", GOOD, "pass"), _metric("node3", GOOD, "pass")])
    v = wave_verdict(record, ["node1"], ["node2", "node3"])
    assert v.outcome == "pass", v.reason
    assert [(c.node, c.against, c.outcome) for c in v.checks] == [("node1", "baseline", "pass"),
                                                                   ("node1", "control", "pass")]


def test_regression_is_named_by_metric_and_node_against_both():
    record = _record([_metric("node1", SLOW, "regression"), _metric("node2", GOOD, "pass"),
                      _metric("node3", GOOD, "pass")])
    v = wave_verdict(record, ["node1"], ["node2", "node3"])
    assert v.outcome == "regression"
    assert v.reason == (
        "torch.all_reduce.busbw{backend=gloo,nodes=1,size=16777216} on node1: -40.0% vs baseline, "
        "-40.0% vs control (node2, node3)")
    control = next(c for c in v.checks if c.against == "control")
    assert control.outcome == "regression" and control.metric == KEY and "node2, node3" in control.reason


def test_control_drift_catches_what_the_baseline_lets_through():
    # the room is 10% slow today: the baseline sees the canary "within tolerance", the control group sees -30%
    drifted = [0.9, 0.91, 0.89, 0.9]
    canary = [0.63, 0.64, 0.62, 0.63]
    record = _record([_metric("node1", canary, "pass"), _metric("node2", drifted, "pass")], nodes=("node1", "node2"))
    v = wave_verdict(record, ["node1"], ["node2"])
    assert v.outcome == "regression" and "vs control" in v.reason and "vs baseline" not in v.reason


def test_the_last_wave_has_no_control_group_and_says_so():
    record = _record([_metric("node2", GOOD, "pass"), _metric("node3", GOOD, "pass")], nodes=("node2", "node3"))
    v = wave_verdict(record, ["node2", "node3"], [])
    assert v.outcome == "pass" and "no control group" in v.reason
    assert {c.against for c in v.checks} == {"baseline"}


def test_a_product_failure_on_a_new_node_is_a_regression_but_not_on_a_control_node():
    failed = RunTest(nodeid="suites/test_nvlink.py::test_links_up[node1]", outcome="failed", kind="product",
                        message="link 0-1 down", node="node1")
    metrics = [_metric("node1", GOOD, "pass"), _metric("node2", GOOD, "pass")]
    v = wave_verdict(_record(metrics, [failed], nodes=("node1", "node2")), ["node1"], ["node2"],)
    assert v.outcome == "regression" and v.reason == "failed: test_links_up[node1] on node node1: link 0-1 down"
    on_control = failed.model_copy(update={"node": "node2"})
    v = wave_verdict(_record(metrics, [on_control], nodes=("node1", "node2")), ["node1"], ["node2"],)
    assert v.outcome == "pass", v.reason


def test_missing_evidence_is_inconclusive():
    # the control group measured nothing: the canary cannot be compared with it
    record = _record([_metric("node1", GOOD, "pass")], nodes=("node1", "node2"))
    v = wave_verdict(record, ["node1"], ["node2"])
    assert v.outcome == "inconclusive"
    assert "not measured on the control group (node2)" in v.reason
    # an infrastructure error on a wave node
    error = RunTest(nodeid="t::test_x[node1]", outcome="error", kind="infrastructure", message="ssh down",
                       node="node1")
    record = _record([_metric("node1", GOOD, "pass"), _metric("node2", GOOD, "pass")], [error],
                     nodes=("node1", "node2"))
    v = wave_verdict(record, ["node1"], ["node2"])
    assert v.outcome == "inconclusive" and "ssh down" in v.reason
    # nothing gated measured at all
    v = wave_verdict(_record([], nodes=("node1", "node2")), ["node1"], ["node2"])
    assert v.outcome == "inconclusive" and "nothing to judge" in v.reason


def test_an_undecided_comparison_with_the_control_group_looks_again_and_pools_the_looks():
    first = _record([_metric("node1", [1.0], "pass"), _metric("node2", [1.01], "pass")], nodes=("node1", "node2"))
    v = wave_verdict(first, ["node1"], ["node2"])
    assert v.outcome == "inconclusive" and v.look_again, v.reason  # one sample per group shows no spread
    second = _record([_metric("node1", [0.99, 1.0, 1.01], "pass"), _metric("node2", [1.0, 0.99, 1.01], "pass")],
                     nodes=("node1", "node2"))
    v = wave_verdict(second, ["node1"], ["node2"], earlier=[first])
    control = next(c for c in v.checks if c.against == "control")
    assert "4 canary and 4 control samples" in control.reason


def test_missing_evidence_is_not_fixed_by_looking_again():
    not_on_control = _record([_metric("node1", GOOD, "pass")], nodes=("node1", "node2"))
    assert not wave_verdict(not_on_control, ["node1"], ["node2"]).look_again
    error = RunTest(nodeid="t::test_x[node2]", outcome="error", kind="infrastructure", message="ssh down",
                    node="node2")
    record = _record([_metric("node1", [1.0], "pass"), _metric("node2", [1.0], "pass")], [error],
                     nodes=("node1", "node2"))
    v = wave_verdict(record, ["node1"], ["node2"])
    assert v.outcome == "inconclusive" and not v.look_again
