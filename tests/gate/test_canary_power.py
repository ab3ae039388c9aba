"""The acceptance study of issue 18, small and seeded: with the room drifting 5% since the baseline was measured,
canary-versus-control catches a 7% regression that the fixed baseline misses, and passes a good image the fixed
baseline cannot clear. Model in testkit/canary_study.py; the full table is bench/canary_power.py."""

import numpy as np
import pytest

from testkit.canary_study import study

TRIALS = 300
CV = 0.02  # the gate's design point (docs/gate.md)


@pytest.fixture
def rng():
    return np.random.default_rng(20261130)


def test_a_7pct_regression_hidden_by_a_5pct_upward_drift_is_caught_against_the_control(rng):
    # the room reads 5% higher than when the baseline was measured: the regressed canary reads 0.93 x 1.05 = 0.977
    r = study(rng, drift=+0.05, ratio=0.93, cv=CV, trials=TRIALS)
    assert r.baseline["regression"] <= 0.02, "the fixed baseline should miss it: 0.977 is inside the 5% tolerance"
    assert r.baseline["pass"] >= 0.95
    assert r.control["regression"] >= 0.85
    assert r.control["pass"] <= 0.01


def test_a_good_image_under_a_5pct_downward_drift_passes_against_the_control(rng):
    # the room reads 5% lower: a good canary reads 0.95 against the baseline, on its regression edge
    r = study(rng, drift=-0.05, ratio=1.00, cv=CV, trials=TRIALS)
    assert r.control["pass"] >= 0.97
    assert r.control["regression"] <= 0.01
    assert r.baseline["pass"] <= 0.20, "the fixed baseline cannot clear an image that sits on its edge"


def test_a_good_image_under_a_5pct_upward_drift_is_not_flagged_against_the_control(rng):
    r = study(rng, drift=+0.05, ratio=1.00, cv=CV, trials=TRIALS)
    assert r.control["regression"] <= 0.01
    assert r.control["pass"] >= 0.97


def test_three_control_nodes_per_look_catch_the_hidden_regression_more_often_than_one(rng):
    one = study(rng, drift=+0.05, ratio=0.93, cv=CV, trials=TRIALS)
    three = study(rng, drift=+0.05, ratio=0.93, cv=CV, trials=TRIALS, control_per_look=3)
    assert three.control["regression"] >= 0.95
    assert three.control["regression"] > one.control["regression"]
    assert three.control_n < one.control_n  # decided sooner, in canary samples
