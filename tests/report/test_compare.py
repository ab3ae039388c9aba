"""`hilt report --compare RUN_A RUN_B`: metric by metric, test by test, version by version."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hilt.history.open import open_history
from hilt.report.cli import report_app
from hilt.report.compare import compare_runs, comparison_html, comparison_json
from tests.support.browser import chromium, html_attr, needs_chromium
from tests.support.nights import GOOD_IMAGE, NEW, OLD, REGRESSED_IMAGE, driver_upgrade_nights
from tests.support.topology import H100, degraded_h100, topology_record

runner = CliRunner()
BUSBW = "nccl.all_reduce.busbw{nodes=2,size=1G}"


@pytest.fixture
def history(tmp_path: Path) -> Path:
    db = tmp_path / "history.sqlite"
    store = open_history(db)
    for run in driver_upgrade_nights():
        store.append(run)
    return db


def test_compare_metric_test_and_version(history: Path) -> None:
    runs = {r.run_id: r for r in open_history(history).runs()}
    c = compare_runs(runs["sim-night-19"], runs["sim-night-20"])
    worst = c.metrics[0]  # worse first
    assert (worst.metric, worst.change, worst.verdict_a, worst.verdict_b) == (BUSBW, "worse", "pass", "regression")
    assert worst.ratio == pytest.approx(150 / 180, abs=0.03)
    changes = {m.metric: m.change for m in c.metrics[1:]}
    assert changes["ddp.samples_per_s{backend=nccl}"] == "same"  # 1% noise is under the 2% threshold
    assert changes["boot.seconds{}"] != "worse"  # one noisy sample: better or same, never listed above busbw
    (changed,) = [t for t in c.tests if t.changed]
    assert (changed.nodeid, changed.a, changed.b) == ("suites/nccl/test_allreduce.py::test_busbw", "passed", "failed")
    assert [v.text() for v in c.version_changes] == [
        f"image {GOOD_IMAGE} → {REGRESSED_IMAGE} (node1, node2)", f"driver {OLD} → {NEW} (node1, node2)"]
    rows = {(v.what, v.node): v for v in c.versions}
    assert rows[("driver", "node2")].changed and not rows[("kernel", "node2")].changed
    # the same run twice: nothing changed
    same = compare_runs(runs["sim-night-19"], runs["sim-night-19"])
    assert same.version_changes == [] and not any(t.changed for t in same.tests)
    assert {m.change for m in same.metrics} == {"same"}


def test_cli_json_has_the_documented_keys(history: Path) -> None:
    done = runner.invoke(report_app, ["--history", str(history), "--compare", "sim-night-19", "sim-night-20",
                                      "--json"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert set(doc) == {"run_a", "run_b", "version_changes", "versions", "metrics", "tests", "fabric"}
    assert doc["run_a"] == {"run_id": "sim-night-19", "started_at": doc["run_a"]["started_at"], "rig": "sim",
                            "image": GOOD_IMAGE, "status": "pass", "gate": "pass"}
    assert doc["run_b"]["status"] == "fail"
    assert {"what": "driver", "before": OLD, "after": NEW, "nodes": ["node1", "node2"]} in doc["version_changes"]
    metric = doc["metrics"][0]
    assert set(metric) == {"metric", "node", "unit", "higher_is_better", "a", "b", "ratio", "verdict_a",
                           "verdict_b", "change"}
    assert metric["change"] == "worse" and metric["node"] is None
    assert set(doc["tests"][0]) == {"test", "nodeid", "node", "a", "b", "changed"} and doc["tests"][0]["changed"]
    assert {"what": "driver", "node": "node1", "a": OLD, "b": NEW, "changed": True} in doc["versions"]


def test_unknown_run_id_is_one_line_naming_it_and_a_usage_error(history: Path) -> None:
    done = runner.invoke(report_app, ["--history", str(history), "--compare", "sim-night-19", "night-99"],
                         env={"COLUMNS": "80"})
    assert done.exit_code == 4  # docs/ci.md: an unknown name is a usage error
    (line,) = done.stderr.splitlines()
    assert "'night-99'" in line and "hilt history list" in line and line.startswith("error: ")
    assert not (history.parent / "reports").exists()
    done = runner.invoke(report_app, ["--history", str(history), "--json"])
    assert done.exit_code == 4 and "--compare" in done.stderr


def test_hostile_strings_are_escaped(history: Path) -> None:
    runs = {r.run_id: r for r in open_history(history).runs()}
    a, b = runs["sim-night-19"], runs["sim-night-20"]
    b.run_id = '<img src=x onerror="alert(1)">'
    b.nodes[0].driver = "</td><script>alert(2)</script>"
    b.tests[0].nodeid = b.tests[0].test_id = "t[<b>x</b>]"
    page = comparison_html(compare_runs(a, b))
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;alert(2)" in page


@needs_chromium
def test_compare_page_lists_the_changed_versions(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare.html"
    done = runner.invoke(report_app, ["--history", str(history), "--compare", "sim-night-19", "sim-night-20",
                                      "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert "2 version changes" in done.stdout
    dom = chromium(out, tmp_path / "profile", "--dump-dom")
    assert html_attr(dom, "data-ready") == "1" and html_attr(dom, "data-errors") == "[]"
    listed = [re.sub(r"<[^>]+>", "", li) for li in re.findall(r'<li class="version-change".*?</li>', dom, re.S)]
    assert listed == [f"image {GOOD_IMAGE} → {REGRESSED_IMAGE} (node1, node2)",
                      f"driver {OLD} → {NEW} (node1, node2)"]
    changed_rows = re.findall(r'<tr class="version changed" data-what="([^"]*)" data-node="([^"]*)"', dom)
    assert sorted(changed_rows) == [("driver", ""), ("driver", "node1"), ("driver", "node2"),
                                    ("image", ""), ("image", "node1"), ("image", "node2")]
    assert re.search(r'<tr class="metric changed" data-metric="nccl[^"]*" data-node="" data-change="worse">', dom)


def test_fabric_links_that_changed_between_the_runs(history: Path) -> None:

    runs = {r.run_id: r for r in open_history(history).runs()}
    a, b = runs["sim-night-19"], runs["sim-night-20"]
    a.nodes[0].topology = b.nodes[0].topology = topology_record("hgx-h100-8gpu", H100)
    a.nodes[1].topology = topology_record("hgx-h100-8gpu", H100)
    b.nodes[1].topology = topology_record("hgx-h100-8gpu", degraded_h100())
    c = compare_runs(a, b)
    assert [(f.node, f.recorded, [(k.a, k.b, k.before, k.after) for k in f.links]) for f in c.fabric] == [
        ("node1", "both", []), ("node2", "both", [("GPU3", "GPU5", "NV18", "NV12")])]
    page = comparison_html(c)
    assert "<li>GPU3–GPU5: NV18 → NV12</li>" in page and "1 fabric link changed" in page
    assert "Same topology in both runs: node1." in page
    assert page.count('class="link diff"') == 2  # B's grid against the profile marks the link
    assert comparison_json(c)["fabric"][1] == {"node": "node2", "recorded": "both", "links": [
        {"a": "GPU3", "b": "GPU5", "before": "NV18", "after": "NV12"}]}
