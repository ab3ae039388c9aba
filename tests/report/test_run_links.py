"""Each run links its Allure report, its JUnit file and its CI job when known, and never a stale or unsafe one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from xml.etree import ElementTree

from hilt.pytestplugin.collector import RunCollector
from hilt.record.run_record import RunRecord
from hilt.report.html import build_report
from hilt.report.junit import add_junit_properties
from hilt.report.links import allure_href, junit_href, run_artifacts
from hilt.session.rig_session import SessionState

HOSTILE = '"><script>alert(1)</script>'


def _junit(tmp_path: Path, name: str, run_id: str) -> Path:
    """A JUnit file from a real pytest run, with the run's provenance added as hilt's run end adds it."""
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    (suite / "test_one.py").write_text("def test_ok():\n    assert True\n")
    xml = tmp_path / name
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hilt",
                           f"--junitxml={xml}", str(suite)], capture_output=True, text=True, timeout=120, cwd=suite)
    assert done.returncode == 0, done.stdout[-2000:]
    add_junit_properties(xml, [("hilt.run_id", run_id)])
    return xml


def test_the_record_keeps_where_the_run_wrote_its_files_and_where_ci_published_them(tmp_path: Path) -> None:
    fields = run_artifacts("reports/junit.xml", "reports/allure-results",
                           {"HILT_ALLURE_URL": "https://ci.lab/nightly/212/allure/",
                            "HILT_JUNIT_URL": "javascript:alert(1)"})
    assert fields["junit_path"] == str(Path("reports/junit.xml").absolute())
    assert fields["allure_results"] == str(Path("reports/allure-results").absolute())
    assert fields["allure_url"] == "https://ci.lab/nightly/212/allure/"
    assert fields["junit_url"] is None  # only http(s) ever becomes a link
    assert run_artifacts(None, None, {}) == {"junit_path": None, "allure_results": None, "junit_url": None,
                                             "allure_url": None}


def test_an_older_record_without_the_fields_still_loads() -> None:
    old = {"run_id": "r1", "started_at": "2026-03-01T02:00:00Z", "rig": "sim", "ci_url": "https://ci.lab/1"}
    record = RunRecord.model_validate(old)
    assert record.junit_path is None and record.allure_url is None


def test_the_collector_records_pytests_junit_and_allure_paths(tmp_path: Path) -> None:
    config = SimpleNamespace(option=SimpleNamespace(xmlpath=str(tmp_path / "junit.xml"),
                                                    allure_report_dir=str(tmp_path / "allure-results")),
                             getoption=lambda name, default=None: default)
    collector = RunCollector(config)
    collector.start(SessionState(run_id="r1", rig="sim", rigs_file="", image_name="img", image=None, boot=False,
                                 started_at="2026-03-01T02:00:00Z"))
    assert collector.record.junit_path == str(tmp_path / "junit.xml")
    assert collector.record.allure_results == str(tmp_path / "allure-results")


def test_a_run_links_its_own_junit_file_and_not_a_later_nights(tmp_path: Path, nightly) -> None:
    runs = nightly(3)
    reports = tmp_path / "reports"
    reports.mkdir()
    xml = _junit(reports, "junit.xml", runs[-1].run_id)  # tonight's file; last nights' runs wrote it too
    runs = [r.model_copy(update={"junit_path": str(xml)}) for r in runs]
    page = build_report(runs, reports / "report.html")
    html = page.read_text()
    assert junit_href(runs[-1], reports) == "junit.xml"  # relative: the report and its files move together
    assert junit_href(runs[0], reports) is None  # the file now holds another run
    details = {m.group(1): m.group(2) for m in re.finditer(
        r'<section class="run" id="run-([^"]+)">(.*?)</section>', html, flags=re.S)}
    assert 'class="run-link junit" href="junit.xml"' in details[runs[-1].run_id]
    assert "run-link" not in details[runs[0].run_id]
    tonight = html.split('<section id="tonight">', 1)[1].split("</section>", 1)[0]
    assert 'href="junit.xml"' in tonight


def test_published_urls_are_linked_and_hostile_values_never_are(tmp_path: Path, nightly) -> None:
    runs = nightly(2)
    hostile_dir = tmp_path / HOSTILE
    hostile_dir.mkdir(parents=True)
    xml = _junit(hostile_dir, "junit.xml", runs[0].run_id)
    runs[0] = runs[0].model_copy(update={"junit_path": str(xml), "allure_url": 'javascript:alert("x")'})
    runs[1] = runs[1].model_copy(update={"allure_url": "https://ci.lab/allure/212/?a=1&b=2",
                                         "junit_url": "https://ci.lab/212/junit.xml", "junit_path": HOSTILE})
    html = build_report(runs, tmp_path / "report.html").read_text()
    assert 'href="https://ci.lab/allure/212/?a=1&amp;b=2"' in html and 'href="https://ci.lab/212/junit.xml"' in html
    assert "javascript:" not in html and "<script>alert" not in html
    href = junit_href(runs[0], tmp_path)
    assert href == "%22%3E%3Cscript%3Ealert%281%29%3C/script%3E/junit.xml"  # the real file, its path encoded
    assert f'href="{href}"' in html


def test_a_generated_allure_report_is_linked_only_for_the_run_it_shows(tmp_path: Path, nightly) -> None:
    """The layout ``hilt report --allure`` writes: reports/allure-results -> reports/allure-report, whose
    widgets/environment.json (as Allure generates it; tests/report/test_allure_report.py checks the format on a
    real build) names the run."""
    runs = [r.model_copy(update={"allure_results": str(tmp_path / "allure-results")}) for r in nightly(2)]
    widgets = tmp_path / "allure-report" / "widgets"
    widgets.mkdir(parents=True)
    (widgets / "environment.json").write_text(json.dumps([{"name": "rig", "values": ["sim"]},
                                                          {"name": "run_id", "values": [runs[1].run_id]}]))
    assert allure_href(runs[1], tmp_path) == "allure-report/index.html"
    assert allure_href(runs[0], tmp_path) is None
    html = build_report(runs, tmp_path / "report.html").read_text()
    assert html.count('class="run-link allure" href="allure-report/index.html"') == 2  # tonight + run details


def test_writing_the_run_s_junit_properties_twice_leaves_one_of_each(tmp_path: Path) -> None:
    """A run's end writes its outputs once more after a crash in hilt's code: junit.xml must not then carry two
    hilt.run_id properties (a CI parser reading the first would read a stale one), nor lose the user's own."""
    xml = _junit(tmp_path, "junit.xml", "run-old")
    add_junit_properties(xml, [("team", "fabric")])
    add_junit_properties(xml, [("hilt.run_id", "run-new"), ("hilt.gate", "inconclusive")])
    props = [(p.get("name"), p.get("value")) for p in ElementTree.parse(xml).getroot().iter("property")]
    assert props == [("team", "fabric"), ("hilt.run_id", "run-new"), ("hilt.gate", "inconclusive")]
