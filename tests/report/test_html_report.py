"""The HTML report opened in headless Chromium: one chart per metric, no script errors, no network."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hilt.history.open import open_history
from hilt.history.series import series_from_runs
from hilt.report.html import build_report, node_status, run_status
from tests.support.browser import REPO, chromium, html_attr, needs_chromium


@pytest.fixture
def nightly_report(tmp_path: Path, nightly) -> tuple[Path, list]:
    """30 nights of two rigs through the history store: sim regresses at night 20, staging-a is flat."""
    store = open_history(tmp_path / "history.sqlite")
    for run in nightly(30, seed=7, rig="sim") + nightly(30, seed=8, rig="staging-a", regress_at=None):
        store.append(run)
    runs = store.runs()
    return build_report(runs, tmp_path / "report.html", title="nightly"), runs


@needs_chromium
def test_report_renders_one_chart_per_metric_without_errors(nightly_report, tmp_path: Path) -> None:
    page, runs = nightly_report
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    series = series_from_runs(runs)
    assert len(series) == 6  # 3 metrics x 2 rigs
    assert html_attr(dom, "data-ready") == "1"
    assert html_attr(dom, "data-errors") == "[]"
    assert html_attr(dom, "data-charts") == "6"
    charts = re.findall(r'<svg class="trend-chart"[^>]*data-metric="([^"]*)" data-rig="([^"]*)"', dom)
    assert sorted(charts) == sorted((k.metric, k.rig) for k in series)
    # the regression is in the changes table, named with its first run and image, and marked on the chart
    (row,) = re.findall(r'<tr class="change"[^>]*>', dom)
    assert 'data-run="sim-night-20"' in row and 'data-image="img-1.4.3-regressed"' in row
    assert 'data-kind="regression"' in row
    assert dom.count('class="cp cp-regression"') == 1
    # tonight: sim is red, staging-a green; every run has a details section the charts link to
    assert re.search(r'data-rig="sim" data-status="fail"', dom)
    assert re.search(r'data-rig="staging-a" data-status="pass"', dom)
    assert dom.count('<section class="run" id="run-') == 60
    assert 'href="#run-sim-night-20"' in dom
    # the image name is on the axis and in the points' hover text
    assert re.search(r'<text class="img-label"[^>]*><title>img-1.4.3-regressed</title>', dom)
    assert re.search(r"<circle class=\"pt v-regression\"[^>]*><title>sim-night-20 · img-1.4.3-regressed", dom)


@needs_chromium
def test_screenshot_is_kept_in_reports(nightly_report, tmp_path: Path) -> None:
    page, _ = nightly_report
    shot = REPO / "reports" / "report.png"
    shot.parent.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    shutil.copy(page, REPO / "reports" / "report-test.html")
    chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a rendered page, not a blank one


@needs_chromium
def test_error_probe_catches_script_errors_and_blocked_fetches(nightly_report, tmp_path: Path) -> None:
    """The no-errors check above can fail: a broken script and a network fetch are both recorded."""
    page, _ = nightly_report
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace(
        "</body>", '<img src="http://127.0.0.1:9/x.png"><script>notDefined()</script></body>'))
    dom = chromium(broken, tmp_path / "profile", "--dump-dom")
    errors = html_attr(dom, "data-errors") or ""
    assert "notDefined" in errors
    assert "csp: http://127.0.0.1:9/x.png" in errors


def test_status_per_rig_and_node(nightly) -> None:
    run = nightly(1)[0]
    assert run_status(run) == "pass"
    broken = run.model_copy(update={"nodes": [run.nodes[0].model_copy(update={"booted": False,
                                                                                "error": "BMC timeout"}),
                                              run.nodes[1]]})
    assert run_status(broken) == "broken"
    assert [node_status(broken, n) for n in broken.nodes] == ["broken", "pass"]
    failing = broken.model_copy(update={"tests": [t.model_copy(update={"outcome": "failed", "kind": "product",
                                                                      "node": "node2"})
                                                  for t in run.tests]})
    assert run_status(failing) == "fail"  # a product failure outranks an infrastructure problem
    assert node_status(failing, failing.nodes[1]) == "fail"
