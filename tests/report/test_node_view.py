"""The per-node view: each node's latest values against its peers on the same profile, outliers first."""

from __future__ import annotations

import re
from pathlib import Path

from hilt.report.html import build_report
from hilt.report.nodes import latest_node_values, node_views
from tests.support.nights import FLEET_PROFILE

BUSBW = "nccl.all_reduce.busbw{nodes=1,size=8G}"


def test_a_node_12_percent_under_its_peers_is_an_outlier_though_the_gate_passed(fleet) -> None:
    runs = fleet(30)
    values = {(v.node, v.metric): v for v in latest_node_values(runs)}
    slow = values[("gpu-03", BUSBW)]
    assert slow.verdict == "pass"  # inside the baseline's 15% tolerance
    assert slow.peers == 3 and slow.profile == FLEET_PROFILE and slow.run_id == "rack-a-night-30"
    assert -0.14 < (slow.deviation or 0) < -0.10 and slow.outlier()
    assert not any(v.outlier() for (node, _), v in values.items() if node != "gpu-03")
    views = node_views(runs)
    assert [v.node for v in views] == ["gpu-03", "gpu-01", "gpu-02", "gpu-04"]  # the outlier first, then by name
    assert [v.metric for v in views[0].outliers()] == [BUSBW]


def test_before_the_step_no_node_is_an_outlier(fleet) -> None:
    assert not any(v.outlier() for v in latest_node_values(fleet(19)))


def test_lower_is_better_flags_the_slow_one_and_peers_are_per_profile(fleet) -> None:
    runs = fleet(3)
    last = runs[-1]
    metrics = [m.model_copy(update={"samples": [150.0]}) if m.name == "boot.seconds" and m.node == "gpu-01" else m
               for m in last.metrics]
    runs[-1] = last.model_copy(update={"metrics": metrics})
    boot = {v.node: v for v in latest_node_values(runs) if v.metric == "boot.seconds{}"}
    assert boot["gpu-01"].outlier() and boot["gpu-01"].deviation > 0.4  # slower boot: worse, and flagged
    # gpu-01 alone on another profile has no peers to be judged against
    runs[-1] = runs[-1].model_copy(update={"node_profiles": {**runs[-1].node_profiles, "gpu-01": "other"}})
    boot = {v.node: v for v in latest_node_values(runs) if v.metric == "boot.seconds{}"}
    assert boot["gpu-01"].peers == 0 and boot["gpu-01"].deviation is None and not boot["gpu-01"].outlier()
    assert boot["gpu-02"].peers == 2


def test_the_report_lists_the_outlier_node_first_with_its_tests(fleet, tmp_path: Path) -> None:
    html = build_report(fleet(30), tmp_path / "r.html").read_text()
    section = html.split('<section id="nodes">', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r'<tr class="node-summary" data-node="([^"]+)" data-rig="rack-a" data-outlier="(\d)">', section)
    # the outlier first, then the node with a broken test, the one with a flaky test, the rest
    assert rows == [("gpu-03", "1"), ("gpu-04", "0"), ("gpu-02", "0"), ("gpu-01", "0")]
    assert re.search(r'<details class="node" id="node-rack-a-gpu-03" data-node="gpu-03" open>', section)
    assert re.search(r'<details class="node" id="node-rack-a-gpu-04" data-node="gpu-04">', section)  # folded
    gpu04 = section.split('id="node-rack-a-gpu-04"', 1)[1].split("</details>", 1)[0]
    assert 'data-state="broken"' in gpu04  # each node's test history
    assert "nccl.all_reduce.busbw nodes=1, size=8G" in section and "{" not in re.sub(r"<[^>]*>", "", section)


def test_two_rigs_with_the_same_node_names_are_different_nodes(fleet, tmp_path: Path) -> None:
    """rack-a and rack-b both name their nodes gpu-01..04 on one profile: eight nodes, each its own latest values,
    each judged against the seven others; only rack-a's gpu-03 stepped down."""
    runs = fleet(30, rig="rack-a") + fleet(30, seed=12, rig="rack-b", regress_at=None, broken_from=None)
    views = node_views(runs)
    assert len(views) == 8 and (views[0].rig, views[0].node) == ("rack-a", "gpu-03")
    assert [v.metric for v in views[0].outliers()] == [BUSBW] and not any(v.outliers() for v in views[1:])
    assert {v.peers for view in views for v in view.values} == {7}
    html = build_report(runs, tmp_path / "r.html").read_text()
    assert 'id="node-rack-a-gpu-03"' in html and 'id="node-rack-b-gpu-03"' in html
    assert '<a class="node-note" href="#node-rack-a-gpu-03">' in html and "#node-rack-b-gpu-03\">outlier" not in html


def test_hilt_report_outlier_sets_how_far_off_is_news(fleet, tmp_path: Path) -> None:
    """gpu-03 is 11.5% under its peers: flagged at the default 10%, not with --outlier 0.15."""
    from typer.testing import CliRunner

    from hilt.history.open import open_history
    from hilt.report.cli import report_app

    db = tmp_path / "h.sqlite"
    store = open_history(db)
    for run in fleet(30):
        store.append(run)
    for threshold, flagged in ((None, "1"), ("0.15", "0")):
        out = tmp_path / f"r-{threshold}.html"
        args = ["--since", "all", "--history", str(db), "-o", str(out), "--no-prom"]
        done = CliRunner().invoke(report_app, args + (["--outlier", threshold] if threshold else []))
        assert done.exit_code == 0, done.output
        row = re.search(r'<tr class="node-summary" data-node="gpu-03" data-rig="rack-a" data-outlier="(\d)">',
                        out.read_text())
        assert row.group(1) == flagged
    done = CliRunner().invoke(report_app, ["--history", str(db), "--outlier", "-1"])
    assert done.exit_code == 2 and "--outlier" in done.output


def test_lease_wide_runs_get_one_line_not_empty_node_blocks(nightly, tmp_path: Path) -> None:
    html = build_report(nightly(5), tmp_path / "r.html").read_text()
    section = html.split('<section id="nodes">', 1)[1].split("</section>", 1)[0]
    assert "No per-node metrics or tests in these runs" in section and "<details" not in section
