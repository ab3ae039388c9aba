"""Hostile strings in every field the new report sections print (node names, test ids, labels, images, paths):
escaped everywhere, so Chromium runs no injected script and builds no injected element."""

from __future__ import annotations

import re
from pathlib import Path

from hilt.report.html import build_report
from tests.support.browser import chromium, html_attr, needs_chromium

EVIL = '"><img src=x onerror=alert(1)><script>window.pwned=1</script>\'<svg onload=alert(2)>'


def _hostile_fleet(fleet) -> list:
    runs = []
    for r in fleet(12, regress_at=6, broken_from=8):
        rename = {n.name: f"{n.name}{EVIL}" for n in r.nodes}
        runs.append(r.model_copy(update={
            "image": f"{r.image}{EVIL}",
            "nodes": [n.model_copy(update={"name": rename[n.name]}) for n in r.nodes],
            "node_profiles": {rename[k]: f"{v}{EVIL}" for k, v in r.node_profiles.items()},
            "tests": [t.model_copy(update={"nodeid": t.nodeid + EVIL, "test_id": f"{t.test_id}{EVIL}",
                                           "node": rename[t.node]}) for t in r.tests],
            "metrics": [m.model_copy(update={"node": rename[m.node], "labels": {**m.labels, f"k{EVIL}": EVIL},
                                             "profile": f"{m.profile}{EVIL}" if m.profile else None})
                        for m in r.metrics],
            "junit_path": EVIL, "allure_results": EVIL, "allure_url": f"javascript:{EVIL}",
            "junit_url": f"https://ci.lab/{EVIL}",
        }))
    return runs


@needs_chromium
def test_hostile_strings_stay_text(tmp_path: Path, fleet) -> None:
    page = build_report(_hostile_fleet(fleet), tmp_path / "report.html")
    html = page.read_text()
    assert html.count("<script>") == 1  # ours; every injected one is text
    assert "<img" not in html and "<svg onload" not in html and "javascript:" not in html
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert html_attr(dom, "data-errors") == "[]" and html_attr(dom, "data-ready") == "1"
    assert not re.search(r"<img\b|<svg onload", dom) and dom.count("<script") == 1  # nothing injected was built
    # the sections still work on those names: an outlier node, a broken and a flaky test, linked runs
    assert re.search(r'<tr class="node-summary" data-node="gpu-03&quot;&gt;&lt;img', dom)
    assert 'data-state="broken"' in dom and 'data-state="flaky"' in dom
