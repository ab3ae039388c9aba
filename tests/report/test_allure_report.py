"""Allure: environment and categories written, report built offline twice, history carried over."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hilt.report.allure_env import (
    build_allure_report,
    carry_history,
    find_allure,
    write_categories,
    write_environment,
)
from hilt.report.links import allure_href

SUITE = '''
import pytest

def test_links_up():
    assert True

def test_busbw():
    raise AssertionError("regression: busbw 150.2 GB/s below 171.0 (baseline 180 -5%)")

def test_boot():
    raise RuntimeError("infrastructure: BMC at 127.0.0.1:8000 timed out powering on node1")

def test_topology():
    assert "NV18" == "NV12", "topology mismatch GPU0-GPU1"
'''


def run_suite(tmp_path: Path, results: Path) -> None:
    """A real pytest session with allure-pytest writing results, as the nightly job does."""
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    (suite / "test_nightly.py").write_text(SUITE)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:hilt", "-p", "no:cacheprovider",
                           f"--alluredir={results}", str(suite)],
                          capture_output=True, text=True, timeout=120, cwd=suite)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]  # the suite has failures


def test_environment_properties_from_a_run(tmp_path: Path, nightly) -> None:
    run = nightly(20)[-1]
    text = write_environment(tmp_path, run).read_text()
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["rig"] == "sim"
    assert props["image"] == "img-1.4.3-regressed"
    assert (props["driver"], props["nccl"], props["kernel"]) == ("550.90.07", "2.21.5", "6.8.0-45")
    text = write_environment(tmp_path, {"rig": "a b", "image": "x=y\nz"}).read_text()
    assert text == "rig=a b\nimage=x=y\\nz\n"


@pytest.mark.skipif(find_allure() is None, reason="Allure CLI not installed: run scripts/install_allure.sh")
def test_allure_report_builds_offline_and_keeps_history(tmp_path: Path, nightly) -> None:
    report = tmp_path / "allure-report"
    for night, run in enumerate(nightly(2), start=1):
        results = tmp_path / f"results-{night}"  # fresh results each night, like CI
        run_suite(tmp_path, results)
        write_environment(results, run)
        write_categories(results)
        assert carry_history(report, results) == (night == 2)
        assert build_allure_report(results, report) == report
        assert (report / "index.html").is_file()

    trend = json.loads((report / "history" / "history-trend.json").read_text())
    assert len(trend) == 2  # both nights in the trend graph
    assert trend[0]["data"]["failed"] == 2 and trend[0]["data"]["broken"] == 1
    history = json.loads((report / "history" / "history.json").read_text())
    assert history and all(len(entry["items"]) == 2 for entry in history.values())

    categories = json.loads((report / "widgets" / "categories.json").read_text())
    by_name = {c["name"]: c["statistic"] for c in categories["items"]}
    assert set(by_name) == {"Infrastructure problems", "Regressions", "Product failures"}
    assert by_name["Regressions"]["failed"] == 1
    assert by_name["Infrastructure problems"]["broken"] == 1
    assert by_name["Product failures"]["failed"] == 1

    env = json.loads((report / "widgets" / "environment.json").read_text())
    assert {"name": "image", "values": ["img-1.4.2"]} in env
    # the HTML report links this Allure report from the run it was generated for, and only from that one
    last, first = (r.model_copy(update={"allure_results": str(tmp_path / "results-2")}) for r in nightly(2)[::-1])
    assert allure_href(last, tmp_path) == "allure-report/index.html" and allure_href(first, tmp_path) is None

    html = (report / "index.html").read_text()
    assert "googletagmanager" not in html and "https://" not in html  # no analytics, no CDN: offline
