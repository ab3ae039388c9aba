"""judge_against_control(): the canary group judged against the control group measured in the same window."""

import math

import pytest

from hilt.gate import Baseline, judge, judge_against_control

BW = Baseline(metric="nccl.busbw", value=480.0, tolerance=0.05, higher_is_better=True,
              labels={"size": "8GiB"}, unit="GB/s")
LATENCY = Baseline(metric="nccl.all_reduce.time_us", value=100.0, tolerance=0.05, higher_is_better=False, unit="us")
CONTROL = [447.0, 449.5, 445.2, 448.1, 446.3]


def test_a_clear_regression_against_the_control_is_found_and_named():
    v = judge_against_control(BW, [412.0, 414.3, 410.6, 413.1, 411.5], CONTROL)
    assert v.outcome == "regression"
    assert v.ci_high < 0.95 and v.ci_low <= v.ratio <= v.ci_high
    assert v.ratio == pytest.approx(412.3 / 447.22, abs=1e-3)
    assert v.n_samples == 5
    assert v.reason.startswith("nccl.busbw{size=8GiB}: regression: canary 412.3 GB/s vs control 447.2 GB/s (-7.8%)")
    assert "5% tolerance" in v.reason and "5 canary and 5 control samples" in v.reason


def test_a_canary_equal_to_its_control_passes_even_when_both_are_far_from_the_stored_baseline():
    canary = [446.1, 448.8, 447.0, 445.9, 448.4]
    # the room drifted: 447 is 7% under the stored 480, so the fixed baseline calls this good image a regression
    assert judge(BW, canary).outcome == "regression"
    v = judge_against_control(BW, canary, CONTROL)
    assert v.outcome == "pass"
    assert v.ci_low >= 0.95 and "within the 5% tolerance" in v.reason


def test_a_canary_clearly_better_than_its_control_is_an_improvement():
    v = judge_against_control(BW, [489.0, 491.2, 490.1, 488.7], CONTROL)
    assert v.outcome == "improvement" and v.ci_low > 1.05


def test_a_noisy_control_group_leaves_it_undecided_where_an_exact_reference_would_decide():
    canary = [440.0, 441.0, 439.5, 440.6]
    noisy_control = [400.0, 500.0, 450.0, 470.0]  # mean 455: canary reads -3.3%, but the control's spread is wide
    v = judge_against_control(BW, canary, noisy_control)
    assert v.outcome == "inconclusive"
    assert v.ci_low < 0.95 < v.ci_high and "cannot tell" in v.reason
    exact = judge(Baseline(BW.metric, 455.0, labels=BW.labels, unit="GB/s"), canary)
    assert exact.outcome == "pass"


@pytest.mark.parametrize(("canary", "outcome"), [
    ([109.0, 110.5, 110.0, 109.6], "regression"),   # slower than the control is worse
    ([101.0, 100.2, 100.8, 99.9], "pass"),
    ([90.0, 89.5, 90.3, 89.8], "improvement"),      # faster by more than the tolerance
])
def test_lower_is_better_metrics_are_judged_the_other_way(canary, outcome):
    assert judge_against_control(LATENCY, canary, [100.1, 99.8, 100.4, 99.7]).outcome == outcome


def test_the_same_drop_is_a_regression_higher_is_better_but_an_improvement_lower_is_better():
    canary, control = [88.0, 88.4, 87.9], [100.2, 99.9, 100.1]
    assert judge_against_control(Baseline("m", 1.0, 0.05, True), canary, control).outcome == "regression"
    assert judge_against_control(Baseline("m", 1.0, 0.05, False), canary, control).outcome == "improvement"


@pytest.mark.parametrize(("canary", "control", "says"), [
    ([412.0], CONTROL, "got 1 canary and 5 control samples"),
    ([412.0, 413.0], [447.0], "got 2 canary and 1 control samples"),
    ([], [], "got 0 canary and 0 control samples"),
])
def test_too_few_samples_in_either_group_is_inconclusive_and_says_how_many(canary, control, says):
    v = judge_against_control(BW, canary, control)
    assert v.outcome == "inconclusive"
    assert v.reason.startswith("nccl.busbw{size=8GiB}: inconclusive: canary vs control: need at least 2 samples")
    assert says in v.reason
    assert math.isnan(v.ci_low) and math.isnan(v.ci_high)


@pytest.mark.parametrize(("canary", "control", "group"), [
    ([412.0, math.nan, 413.0], CONTROL, "canary"),
    ([412.0, 413.0, 414.0], [447.0, math.inf], "control"),
])
def test_non_finite_samples_are_inconclusive_naming_the_group(canary, control, group):
    v = judge_against_control(BW, canary, control)
    assert v.outcome == "inconclusive" and f"non-finite {group} samples" in v.reason


def test_a_non_positive_control_mean_is_inconclusive_not_a_crash():
    v = judge_against_control(BW, [412.0, 413.0], [0.0, 0.0, 0.0])
    assert v.outcome == "inconclusive" and "control mean 0 GB/s is not positive" in v.reason


def test_a_tolerance_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match=r"nccl.busbw\{size=8GiB\}: tolerance must be in \(0, 1\)"):
        judge_against_control(Baseline(BW.metric, 480.0, tolerance=1.5, labels=BW.labels), [1.0, 2.0], [1.0, 2.0])


def test_more_looks_in_the_budget_make_each_look_stricter():
    canary, control = [427.0, 431.0, 424.0, 429.0], [447.0, 452.0, 443.0, 449.0]
    one_look = judge_against_control(BW, canary, control, max_samples=4)
    many = judge_against_control(BW, canary, control, max_samples=20)
    assert many.confidence > one_look.confidence
    assert many.ci_high - many.ci_low > one_look.ci_high - one_look.ci_low


def test_more_control_nodes_make_the_same_canary_decidable_at_the_same_level():
    canary = [414.0, 419.0, 410.0, 416.0]
    one_node = [447.0, 459.0, 437.0, 451.0]
    three_nodes = one_node + [455.0, 441.0, 449.0, 445.0, 457.0, 439.0, 453.0, 443.0]  # same spread, 3x the samples
    few = judge_against_control(BW, canary, one_node)
    many = judge_against_control(BW, canary, three_nodes)
    assert few.outcome == "inconclusive" and many.outcome == "regression"
    assert many.confidence == few.confidence  # the looks are counted on the canary, so the level is the same
    assert "4 canary and 12 control samples" in many.reason
