"""judge(): each outcome, both directions, with and without the baseline's own samples, and the edge cases."""

import math

import pytest

from hilt.gate import Baseline, judge

BW = Baseline(metric="nccl.all_reduce.busbw", value=480.0, tolerance=0.05, higher_is_better=True,
              labels={"size": "8589934592"}, unit="GB/s")
LATENCY = Baseline(metric="nccl.all_reduce.time_us", value=100.0, tolerance=0.05, higher_is_better=False)


def test_the_issue_example_passes_with_a_reason_a_person_reads():
    v = judge(Baseline(metric="nccl.all_reduce.busbw", value=480.0, tolerance=0.05, higher_is_better=True,
                       samples=None), [471.2, 478.0, 480.3, 476.9, 479.5])
    assert v.outcome == "pass"
    assert v.n_samples == 5
    assert v.ci_low >= 0.95 and v.ci_low <= v.ratio <= v.ci_high
    assert "477.2" in v.reason and "480" in v.reason and "5%" in v.reason


def test_a_clear_drop_is_a_regression_naming_metric_size_measured_and_expected():
    v = judge(BW, [441.0, 445.0, 439.5, 443.2])
    assert v.outcome == "regression"
    assert v.ci_high < 0.95
    assert "nccl.all_reduce.busbw{size=8589934592}" in v.reason
    assert "442.2 GB/s" in v.reason and "480 GB/s" in v.reason and "-7.9%" in v.reason


def test_a_clear_gain_beyond_tolerance_is_an_improvement():
    v = judge(BW, [515.0, 512.0, 518.0, 514.0])
    assert v.outcome == "improvement" and v.ci_low > 1.05


def test_few_noisy_samples_near_the_edge_are_inconclusive():
    v = judge(BW, [470.0, 440.0, 455.0])
    assert v.outcome == "inconclusive"
    assert v.ci_low < 0.95 < v.ci_high
    assert "cannot tell" in v.reason


@pytest.mark.parametrize(("samples", "outcome"), [
    ([109.0, 110.5, 110.0, 109.6], "regression"),   # slower is worse
    ([101.0, 100.2, 100.8, 99.9], "pass"),
    ([90.0, 89.5, 90.3, 89.8], "improvement"),      # faster by more than the tolerance
])
def test_lower_is_better_metrics_are_judged_the_other_way(samples, outcome):
    assert judge(LATENCY, samples).outcome == outcome


def test_the_same_drop_higher_is_better_is_a_regression_but_lower_is_better_an_improvement():
    samples = [88.0, 88.4, 87.9]
    assert judge(Baseline("m", 100.0, 0.05, True), samples).outcome == "regression"
    assert judge(Baseline("m", 100.0, 0.05, False), samples).outcome == "improvement"


def test_a_noisy_baseline_widens_the_interval():
    samples = [475.0, 478.0, 476.5, 477.2, 476.0]
    exact = judge(BW, samples)
    noisy = Baseline(metric=BW.metric, value=480.0, samples=[430.0, 530.0, 480.0, 455.0, 505.0])
    spread = judge(noisy, samples)
    assert exact.outcome == "pass"
    assert spread.outcome == "inconclusive"
    assert spread.ci_high - spread.ci_low > 5 * (exact.ci_high - exact.ci_low)
    assert "baseline spread from 5 samples" in spread.reason


def test_tight_baseline_samples_still_decide():
    tight = Baseline(metric=BW.metric, value=480.0, samples=[479.0, 480.5, 480.0, 481.0, 479.5])
    assert judge(tight, [440.0, 442.0, 441.0, 443.0]).outcome == "regression"
    assert judge(tight, [478.0, 480.0, 479.0, 481.0]).outcome == "pass"


def test_no_samples_is_inconclusive():
    v = judge(BW, [])
    assert v.outcome == "inconclusive" and v.n_samples == 0 and math.isnan(v.ratio)
    assert "no samples" in v.reason


def test_one_sample_is_inconclusive_however_far_off():
    v = judge(BW, [100.0])
    assert v.outcome == "inconclusive" and "at least 2" in v.reason


def test_zero_variance_samples_decide_as_exact():
    assert judge(BW, [480.0, 480.0]).outcome == "pass"
    assert judge(BW, [400.0, 400.0]).outcome == "regression"


def test_non_finite_samples_are_inconclusive():
    assert judge(BW, [480.0, float("nan"), 479.0]).outcome == "inconclusive"


@pytest.mark.parametrize("bad", [Baseline("m", 0.0), Baseline("m", -1.0), Baseline("m", 1.0, tolerance=0.0)])
def test_an_invalid_baseline_is_refused(bad):
    with pytest.raises(ValueError, match="m"):
        judge(bad, [1.0, 1.0])


def test_looking_often_stays_honest_at_the_tolerance_edge():
    """At a true ratio exactly on the edge, looking after every sample from 2 to 20 must not call a
    regression (or a pass) more than about alpha = 10% of the time."""
    import numpy as np

    rng = np.random.default_rng(7)
    trials, regressions, passes = 400, 0, 0
    base = Baseline("m", 100.0, 0.05)
    for _ in range(trials):
        xs = list(95.0 * (1 + 0.02 * rng.standard_normal(20)))
        for n in range(2, 21):
            v = judge(base, xs[:n])
            if v.outcome != "inconclusive":
                regressions += v.outcome == "regression"
                passes += v.outcome == "pass"
                break
    assert regressions / trials <= 0.14 and passes / trials <= 0.14
    # a single look at the same level would be far more often wrong: the sequential level is stricter
    assert judge(base, xs[:5]).confidence > 0.95


def test_the_judge_compares_with_value_not_the_samples_mean():
    # issue 13 failure 2: with samples, the judge centred on their mean and ignored `value`
    drifted = Baseline(metric=BW.metric, value=480.0, samples=[100.0, 101.0, 100.5, 99.5])
    verdict = judge(drifted, [100.0, 100.4, 99.8, 100.2])
    assert verdict.outcome == "regression" and "expected 480" in verdict.reason


def test_the_kept_calibration_is_what_the_monte_carlo_gives():
    """sequential.CALIBRATED spares each judging process the Monte Carlo; it must be exactly its result."""
    from hilt.gate.sequential import CALIBRATED, calibrate

    for (max_samples, alpha), level in CALIBRATED.items():
        assert calibrate(max_samples, alpha) == pytest.approx(level, rel=1e-12)
