"""ReleaseGate: clear changes decided at once, unclear ones re-measured up to the budget, and the session
verdict that never passes a run whose rig failed."""

import itertools
from pathlib import Path

from hilt.gate.baselines import BaselineEntry, BaselineSet, GateRule
from hilt.gate.release_gate import ReleaseGate
from hilt.record.metrics import Metric


def gate(max_repeats: int = 20, allow_missing: bool = False) -> ReleaseGate:
    bset = BaselineSet("rack", Path("rack.yaml"),
                       entries=[BaselineEntry(metric="bw", labels={"size": "64"}, value=100.0, unit="GB/s"),
                                BaselineEntry(metric="bw", labels={"size": "1"}, value=10.0, unit="GB/s")],
                       gated=[GateRule(metric="bw", labels={"size": ["64"]})])
    return ReleaseGate(bset, max_repeats=max_repeats, allow_missing=allow_missing)


class Remeasure:
    """Hands out the next samples of a fixed series and counts the calls, as a probe re-run would."""

    def __init__(self, values):
        self.values = iter(values)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return [next(self.values)]


def bw(samples, size=64) -> Metric:
    return Metric.of("bw", "GB/s", samples, {"size": size, "node": "n1"})


def test_a_clear_regression_is_decided_without_remeasuring():
    more = Remeasure(itertools.repeat(80.0))
    check = gate().check(bw([80.1, 79.8, 80.3]), more)
    assert check.verdict.outcome == "regression" and check.failed
    assert more.calls == 0 and len(check.metric.samples) == 3
    assert "bw{size=64}" in check.verdict.reason and "80.07 GB/s" in check.verdict.reason


def test_a_clear_pass_is_decided_early():
    more = Remeasure(itertools.cycle([100.5, 99.5]))
    check = gate().check(bw([99.0, 101.0]), more)
    assert check.verdict.outcome == "pass" and not check.failed
    assert len(check.metric.samples) <= 4


def test_an_unclear_metric_is_remeasured_until_decided_keeping_every_sample():
    # first samples are noisy around 97; later ones settle near 97.5: decided as pass after a few more
    more = Remeasure(itertools.cycle([97.0, 98.0, 97.5]))
    check = gate().check(bw([93.0, 101.0, 96.0]), more)
    assert check.verdict.outcome == "pass"
    assert 0 < more.calls < 17
    assert len(check.metric.samples) == 3 + more.calls
    assert check.metric.samples[:3] == (93.0, 101.0, 96.0)


def test_it_stops_at_the_budget_and_stays_inconclusive():
    more = Remeasure(itertools.cycle([89.0, 101.0]))   # mean 95: right on the edge, with a wide spread
    check = gate(max_repeats=12).check(bw([89.0, 101.0]), more)
    assert check.verdict.outcome == "inconclusive" and not check.failed
    assert more.calls == 10 and len(check.metric.samples) == 12


def test_without_remeasure_it_judges_what_it_has():
    check = gate().check(bw([93.0, 101.0, 96.0]))
    assert check.verdict.outcome == "inconclusive"


def test_a_missing_baseline_is_unbaselined_and_fails_unless_allowed():
    m = Metric.of("ddp.samples_per_s", "1/s", [10.0, 11.0])
    strict = ReleaseGate(None).check(m)
    assert strict.verdict.outcome == "unbaselined" and strict.failed and strict.baseline is None
    assert "--allow-missing-baseline" in strict.verdict.reason
    lenient = ReleaseGate(None, allow_missing=True).check(m)
    assert lenient.verdict.outcome == "unbaselined" and not lenient.failed


def test_an_ungated_metric_is_judged_for_information_and_never_fails_or_remeasures():
    more = Remeasure(itertools.repeat(5.0))
    check = gate().check(bw([5.0, 5.1, 4.9], size=1), more)
    assert check.verdict.outcome == "regression" and not check.failed and not check.gated
    assert more.calls == 0


def test_a_check_becomes_a_summary_record_and_junit_properties():
    check = gate().check(bw([80.1, 79.8, 80.3]))
    rec = check.to_record(test="suites/test_nccl.py::test_busbw")
    assert rec.verdict.outcome == "regression" and rec.baseline.value == 100.0 and rec.samples == [80.1, 79.8, 80.3]
    props = dict(check.junit_properties())
    assert props["gate.outcome"] == "regression" and props["gate.metric"] == "bw{node=n1,size=64}"
