"""Otava change points over synthesized nightly series: found where the image changed, not in noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.history.open import open_history
from hilt.history.series import Series, SeriesKey, SeriesPoint, series_from_runs
from hilt.report.changes import ChangeOptions, changes_in_runs, detect_changes

BUSBW = SeriesKey("sim", "nccl.all_reduce.busbw{nodes=2,size=1G}")


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_step_regression_found_at_run_20_with_its_image(tmp_path: Path, nightly, seed: int) -> None:
    store = open_history(tmp_path / "h.sqlite")
    for r in nightly(30, seed=seed):
        store.append(r)
    changes = changes_in_runs(store.runs())
    assert list(changes) == [BUSBW]  # ddp and boot time are flat noise: no change there
    (change,) = changes[BUSBW]
    assert change.run_id == "sim-night-20"
    assert change.image == "img-1.4.3-regressed"
    assert change.previous_image == "img-1.4.2"
    assert change.kind == "regression"
    assert change.rel_change == pytest.approx(150 / 180 - 1, abs=0.02)
    assert change.started_at.day == 20


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_flat_noisy_series_reports_no_change(nightly, seed: int) -> None:
    runs = nightly(30, seed=seed, regress_at=None)
    assert changes_in_runs(runs) == {}
    assert changes_in_runs(runs, ChangeOptions(min_magnitude=0.0)) == {}  # not even a tiny one




def test_direction_decides_regression_or_improvement(nightly) -> None:
    runs = nightly(30, regress_at=None)
    boot = series_from_runs(runs)[SeriesKey("sim", "boot.seconds{}")]
    # boot time (lower is better) rises by a third from night 16: a regression
    slower = Series(boot.key, boot.unit, boot.higher_is_better,
                    [p if i < 15 else SeriesPoint(p.run_id, p.started_at, p.rig, "img-slow", p.value * 1.33,
                                                  p.samples, p.higher_is_better, p.unit)
                     for i, p in enumerate(boot.points)])
    (change,) = detect_changes(slower)
    assert (change.index, change.kind, change.image) == (15, "regression", "img-slow")
    # the same rise on a higher-is-better metric is an improvement
    faster = Series(boot.key, boot.unit, True, slower.points)
    assert detect_changes(faster)[0].kind == "improvement"


def test_min_magnitude_and_pvalue_are_honoured(nightly) -> None:
    runs = nightly(30)
    busbw = series_from_runs(runs)[BUSBW]
    assert detect_changes(busbw, ChangeOptions(min_magnitude=0.10))  # a 17% drop passes 10%
    assert detect_changes(busbw, ChangeOptions(min_magnitude=0.25)) == []  # but not 25%
    assert detect_changes(busbw, ChangeOptions(max_pvalue=1e-300)) == []
