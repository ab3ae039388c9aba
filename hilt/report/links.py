"""Where else a run can be read: its CI job, its Allure report, its JUnit file; linked from the report.

Why links are checked, not just written: every night writes ``reports/junit.xml`` and ``reports/allure-report/``
again, so a path recorded thirty nights ago now holds tonight's results. A local file is linked for a run only
when it still holds *that* run (the JUnit file's ``hilt.run_id`` testsuite property, the Allure report's
``run_id`` environment entry, both written by hilt); a published copy is linked from its URL (recorded from
``HILT_JUNIT_URL`` / ``HILT_ALLURE_URL``, which the CI job sets when it publishes them). Only http(s) URLs
are ever links: the values come from the environment and end up in ``href``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

from hilt.record.run_record import RunRecord

_HTTP = re.compile(r"^https?://[^\s/]+[^\s]*$")


def http_url(value: str | None) -> str | None:
    """``value`` when it is an http(s) URL (never ``javascript:``, ``data:`` or a path), else None."""
    value = (value or "").strip()
    return value if _HTTP.match(value) else None


def run_artifacts(xmlpath: str | None, allure_dir: str | None,
                  env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The run record's link fields, from pytest's ``--junitxml`` / ``--alluredir`` and the CI's environment."""
    env = os.environ if env is None else env
    return {
        "junit_path": str(Path(xmlpath).absolute()) if xmlpath else None,
        "allure_results": str(Path(allure_dir).absolute()) if allure_dir else None,
        "junit_url": http_url(env.get("HILT_JUNIT_URL")),
        "allure_url": http_url(env.get("HILT_ALLURE_URL")),
    }


@lru_cache(maxsize=64)
def _junit_run_ids(path: str, mtime_ns: int) -> frozenset[str]:
    """The ``hilt.run_id`` properties of a JUnit file (``mtime_ns`` keys the cache: a rewritten file is read
    again)."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return frozenset()
    return frozenset(p.get("value", "") for p in root.iter("property") if p.get("name") == "hilt.run_id")


@lru_cache(maxsize=64)
def _allure_run_ids(path: str, mtime_ns: int) -> frozenset[str]:
    """The ``run_id`` environment values of a generated Allure report (its ``widgets/environment.json``)."""
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
        return frozenset(str(v) for e in entries if isinstance(e, dict) and e.get("name") == "run_id"
                         for v in e.get("values") or [])
    except (OSError, ValueError, TypeError, AttributeError):
        return frozenset()


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns if path.is_file() else None
    except OSError:
        return None


def _relative_href(target: Path, report_dir: Path) -> str:
    """A link from the report's directory to ``target`` (relative, so the pair can be moved together)."""
    try:
        rel = os.path.relpath(target, report_dir.absolute())
    except ValueError:  # another drive
        return target.absolute().as_uri()
    return quote(Path(rel).as_posix())


def junit_href(record: RunRecord, report_dir: Path) -> str | None:
    if http_url(record.junit_url):
        return record.junit_url
    if not record.junit_path:
        return None
    path = Path(record.junit_path)
    mtime = _mtime(path)
    if mtime is None or record.run_id not in _junit_run_ids(str(path), mtime):
        return None
    return _relative_href(path, report_dir)


def allure_href(record: RunRecord, report_dir: Path) -> str | None:
    """The published Allure report, or the one generated next to the run's results (``allure-results`` ->
    ``allure-report``, the layout ``hilt report --allure`` writes) when it was generated from this run."""
    if http_url(record.allure_url):
        return record.allure_url
    if not record.allure_results:
        return None
    report = Path(record.allure_results).parent / "allure-report"
    env = report / "widgets" / "environment.json"
    mtime = _mtime(env)
    if mtime is None or record.run_id not in _allure_run_ids(str(env), mtime):
        return None
    return _relative_href(report / "index.html", report_dir)


def run_links(record: RunRecord, report_dir: Path) -> str:
    """``Allure report · JUnit file`` links for a run ("" when neither is known); the CI job is linked apart."""
    links = []
    for label, cls, href in (("Allure report", "allure", allure_href(record, report_dir)),
                             ("JUnit file", "junit", junit_href(record, report_dir))):
        if href:
            links.append(f'<a class="run-link {cls}" href="{escape(href, quote=True)}" '
                         f'rel="noopener noreferrer">{label}</a>')
    return " ".join(links)
