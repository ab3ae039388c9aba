"""The one run verdict (hilt.gate.verdict.run_verdict) and the coverage it is built on."""

from __future__ import annotations

from pathlib import Path

from hilt.exitcodes import ExitCode
from hilt.gate.baselines import BaselineEntry, BaselineSet, GateRule
from hilt.gate.coverage import expected_entries, judge_coverage
from hilt.probes.plan import NcclTestsPlan, nccl_planned
from hilt.record import run_record as rr
from hilt.record.run_record import MetricRecord, NodeRecord, RunRecord, VerdictRecord

SIZE = "67108864"


def bset(profile: str = "p4", nodes_label: str = "1") -> BaselineSet:
    return BaselineSet(profile, Path(f"{profile}.yaml"), entries=[
        BaselineEntry(metric="nccl.all_reduce.busbw", labels={"size": SIZE, "nodes": nodes_label}, value=100.0),
        BaselineEntry(metric="torch.all_reduce.busbw", labels={"size": "16", "nodes": "2"}, value=1.0)],
        gated=[GateRule(metric="nccl.all_reduce.busbw"), GateRule(metric="torch.all_reduce.busbw")])


def metric(node: str | None, outcome: str = "pass", size: str = SIZE, name: str = "nccl.all_reduce.busbw",
           nodes: str = "1", profile: str = "p4") -> MetricRecord:
    return MetricRecord(name=name, unit="GB/s", labels={"size": size, "nodes": nodes}, samples=[1.0, 1.0],
                        node=node, profile=profile, test=f"suites/test_nccl.py::test_nccl_tests[{node}]",
                        verdict=VerdictRecord(outcome=outcome, reason=f"{name}: {outcome}: measured",
                                              failed=outcome == "regression"))


def trec(name: str, node: str | None, outcome: str = "passed", kind: str = "none", message: str | None = None,
         probe: list[str] | None = None):
    nodeid = f"suites/test_nccl.py::{name}" + (f"[{node}]" if node else "")
    return rr.TestRecord(nodeid=nodeid, outcome=outcome, kind=kind, node=node, message=message, probe=probe)


NODES = {"gpu-01": "p4", "r3-u17.gpu": "p4"}


def run(metrics, tests, nodes=NODES, baselines=None, plans=None, booted=None) -> RunRecord:
    baselines = baselines or {"p4": bset()}
    records = [NodeRecord(name=n, booted=(booted or {}).get(n, True), error="no power") for n in nodes]
    expected = expected_entries(nodes, baselines)
    record = RunRecord(run_id="r", started_at="2026-11-30T00:00:00Z", rig="x", nodes=records, tests=tests,
                       metrics=metrics)
    record.coverage = judge_coverage(expected, metrics, tests, records, plans)
    return record


def good_tests():
    return [trec("test_nccl_tests", n) for n in NODES] + [trec("test_torch_allreduce_across_lease", None)]


def test_every_gated_entry_judged_within_tolerance_passes():
    record = run([metric("gpu-01"), metric("r3-u17.gpu"),
                  metric(None, name="torch.all_reduce.busbw", size="16", nodes="2")], good_tests())
    verdict, code = _verdict(record)
    assert (verdict.outcome, code) == ("pass", ExitCode.PASS)
    assert "gated: 3 of 3 entries measured" in verdict.reason


def test_a_regression_fails_the_run_naming_the_node():
    record = run([metric("gpu-01"), metric("r3-u17.gpu", "regression"),
                  metric(None, name="torch.all_reduce.busbw", size="16", nodes="2")], good_tests())
    verdict, code = _verdict(record)
    assert (verdict.outcome, code) == ("regression", ExitCode.FAILED)
    assert "node r3-u17.gpu" in verdict.reason


def test_a_gate_that_measured_nothing_is_inconclusive_naming_the_entries_and_why():
    # issue 13 failure 1: the sizes measured matched no gated entry, and the run passed
    plan = nccl_planned(NcclTestsPlan(min_bytes=2**20, max_bytes=2**20))
    tests = good_tests()
    record = run([metric("gpu-01", size="1048576"), metric("r3-u17.gpu", size="1048576")], tests,
                 plans={"gpu-01": plan, "r3-u17.gpu": plan})
    verdict, code = _verdict(record)
    assert (verdict.outcome, code) == ("inconclusive", ExitCode.INCONCLUSIVE)
    assert "gated: 0 of 3 entries measured" in verdict.reason
    assert f"nccl.all_reduce.busbw{{nodes=1,size={SIZE}}}@gpu-01 (size={SIZE} is not in the probe plan" \
        in verdict.reason
    assert record.coverage.line() == "gated: 0 of 3 entries measured"


def test_unmeasured_entries_say_why():
    tests = [trec("test_nccl_tests", "gpu-01", "skipped", message="all_reduce_perf (nccl-tests) is not installed",
                  probe=["nccl."])]
    record = run([], tests, booted={"r3-u17.gpu": False})
    why = {e.key: e.why for e in record.coverage.entries}
    key = f"nccl.all_reduce.busbw{{nodes=1,size={SIZE}}}"
    assert "skipped: all_reduce_perf (nccl-tests) is not installed" in why[f"{key}@gpu-01"]
    assert why[f"{key}@r3-u17.gpu"] == "node r3-u17.gpu not booted: no power"
    assert why["torch.all_reduce.busbw{nodes=2,size=16}@lease"].startswith("node r3-u17.gpu not booted")


def test_why_not_measured_comes_from_the_probe_marker_not_the_test_name():
    """Issue 24 item 12: a team's own probe, named as it likes, is asked why its metric was not measured."""
    key = f"nccl.all_reduce.busbw{{nodes=1,size={SIZE}}}"
    ours = [trec("test_our_fabric", "gpu-01", "skipped", message="our harness is not installed",
                 probe=["nccl.all_reduce.busbw"]),
            trec("test_our_other", "r3-u17.gpu", "failed", "product", "assert 3 == 4", probe=[]),
            trec("test_nccl_tests", "r3-u17.gpu", "failed", "product", "not a probe: no marker, no release_gate")]
    why = {e.key: e.why for e in run([], ours).coverage.entries}
    assert why[f"{key}@gpu-01"] == "probe test_our_fabric skipped: our harness is not installed"
    # a probe that declares nothing may measure it: named as such, never a test picked by its name
    assert why[f"{key}@r3-u17.gpu"] == ("probe test_our_other, which may measure it (its probe marker names no "
                                        "metric), failed before measuring it: assert 3 == 4")
    assert why["torch.all_reduce.busbw{nodes=2,size=16}@lease"] == \
        "no probe of torch.all_reduce.busbw ran on the lease (none selected)"
    # a declared probe that ran and recorded nothing says so
    passed = [trec("test_our_fabric", n, probe=["nccl."]) for n in NODES]
    assert {e.why for e in run([], passed).coverage.entries if e.scope == "node"} == {
        f"probe test_our_fabric ran on node {n} and recorded no nccl.all_reduce.busbw" for n in NODES}


def test_a_rollout_wave_gates_no_lease_wide_entry_and_its_lease_metric_fails_nothing():
    """Issue 24 item 2: a wave's lease mixes the old and the new image (or holds 3 nodes no baseline names)."""
    from hilt.gate.baselines import RunBaselines
    from hilt.gate.release_gate import ReleaseGate
    from hilt.record.metrics import Metric

    why = "a rollout's wave holds nodes on the old and the new image"
    expected = expected_entries(NODES, {"p4": bset(nodes_label="1")}, lease_ungated=why)
    assert all(e.scope == "node" for e in expected.entries)
    assert expected.ungated == [f"p4: torch.all_reduce.busbw{{nodes=2,size=16}}: lease-wide, not gated: {why}"]
    profile, baselines, reason = RunBaselines(NODES, {"p4": bset()}, lease_ungated=why).for_lease()
    assert (profile, reason) == ("p4", why)
    gate = ReleaseGate(baselines, ungated_reason=reason)
    for nodes in ("2", "3"):  # baselined (judged for information) and unbaselined: neither fails its test
        check = gate.check(Metric.of("torch.all_reduce.busbw", "GB/s", [1.0, 1.0], {"size": "16", "nodes": nodes}))
        assert not check.gated and not check.failed, check


def test_each_node_is_owed_its_own_profiles_entries_and_a_mixed_lease_has_no_lease_wide_gate():
    baselines = {"p4": bset("p4"), "p8": bset("p8")}
    expected = expected_entries({"gpu-01": "p4", "node_7": "p8"}, baselines)
    assert sorted((e.node, e.profile) for e in expected.entries) == [("gpu-01", "p4"), ("node_7", "p8")]
    assert len(expected.ungated) == 2 and "mixes profiles p4, p8" in expected.ungated[0]
    # a measurement judged against another node's profile does not cover this node's entry
    record = run([metric("gpu-01"), metric("node_7", profile="p4")], [], nodes={"gpu-01": "p4", "node_7": "p8"},
                 baselines=baselines)
    assert [e.measured for e in record.coverage.entries] == [True, False]


def test_no_gated_entries_passes_only_with_allow_ungated():
    record = run([], [trec("test_nccl_tests", "gpu-01")], baselines={"p4": None})
    assert _verdict(record)[0].outcome == "inconclusive" and "--allow-ungated" in _verdict(record)[0].reason
    verdict, code = _verdict(record, allow_ungated=True)
    assert (verdict.outcome, code) == ("pass", ExitCode.PASS) and "allowed by --allow-ungated" in verdict.reason


def test_a_plain_functional_run_is_not_a_gate():
    record = run([], [trec("test_my_feature", "gpu-01")])
    record.coverage.gate_run = False
    verdict, code = _verdict(record)
    assert (verdict.outcome, code) == ("not_run", ExitCode.PASS) and verdict.reason.startswith("gate: not run")
    record.tests.append(trec("test_other", "gpu-01", "failed", "product", "assert 1 == 2"))
    assert _verdict(record)[1] == ExitCode.FAILED


def test_a_product_failure_is_a_regression_and_infrastructure_alone_is_inconclusive():
    tests = [*good_tests(), trec("test_nvlink", "gpu-01", "failed", "product", "link 3 down")]
    record = run([metric("gpu-01"), metric("r3-u17.gpu"),
                  metric(None, name="torch.all_reduce.busbw", size="16", nodes="2")], tests)
    verdict, _ = _verdict(record)
    assert verdict.outcome == "regression" and "test_nvlink[gpu-01]: link 3 down" in verdict.reason
    tests[-1] = trec("test_nvlink", "gpu-01", "error", "infrastructure", "ssh: connection reset")
    record.tests = tests
    assert _verdict(record)[0].outcome == "inconclusive"


def test_a_session_error_or_interrupt_keeps_its_meaning():
    record = run([], [])
    assert _verdict(record, session_error="BMC refused")[0].reason == "infrastructure: BMC refused"
    assert _verdict(record, pytest_status=2)[1] == 2


def _verdict(record, **kw):
    from hilt.gate.verdict import run_verdict

    return run_verdict(record, kw.pop("pytest_status", 0), **kw)
