"""At each change point, what else changed between the two runs around it (image, driver, NCCL, ...)."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path

from hilt.history.series import SeriesKey
from hilt.record.run_record import MetricRecord
from hilt.report.changes import changes_in_runs, with_versions
from hilt.report.html import build_report
from hilt.report.versions import VersionChange, version_diff, versions_html
from tests.support.browser import chromium, needs_chromium
from tests.support.nights import GOOD_IMAGE, NEW, OLD, REGRESSED_IMAGE, driver_upgrade_nights, make_night

BUSBW = SeriesKey("sim", "nccl.all_reduce.busbw{nodes=2,size=1G}")
def test_change_point_lists_the_driver_change_that_came_with_it() -> None:
    (change,) = changes_in_runs(driver_upgrade_nights())[BUSBW]
    assert change.run_id == "sim-night-20"
    assert change.versions == (
        VersionChange("image", GOOD_IMAGE, REGRESSED_IMAGE, ("node1", "node2")),
        VersionChange("driver", OLD, NEW, ("node1", "node2")),
    )
    assert change.versions[1].text() == f"driver {OLD} → {NEW} (node1, node2)"


def test_versions_come_from_the_previous_run_not_the_previous_point() -> None:
    """A series has a point per node: the point before a change can be the same run's other node."""
    runs = driver_upgrade_nights()
    (change,) = changes_in_runs(runs)[BUSBW]
    same_run = replace(change, previous_run_id=change.run_id, versions=())
    (found,) = with_versions({BUSBW: [same_run]}, runs)[BUSBW]
    assert [v.what for v in found.versions] == ["image", "driver"]
    assert found.previous_run_id == "sim-night-19"  # the run before, not the same run's other node


def test_diff_per_node_nccl_bios_and_firmware() -> None:
    rng = random.Random(1)
    a, b = make_night(1, rng), make_night(2, rng)
    b.nodes[1].bios_version = "1.7.2"
    a.nodes[1].bios_version = "1.6.9"
    b.nodes[0].bmc_firmware = "7.10"  # not recorded the night before
    a.metrics.append(MetricRecord(name="nccl.busbw", unit="GB/s", samples=[1.0], node="node1+node2",
                                  labels={"nccl_version": "2.21.5"}))
    b.metrics.append(MetricRecord(name="nccl.busbw", unit="GB/s", samples=[1.0], node="node1+node2",
                                  labels={"nccl_version": "2.23.4"}))
    assert [c.text() for c in version_diff(a, b)] == [
        "NCCL 2.21.5 → 2.23.4 (node1, node2)",
        "BIOS 1.6.9 → 1.7.2 (node2)",
        "BMC firmware not recorded → 7.10 (node1)",
    ]
    b.nodes.pop()  # a node gone is not a version change
    assert [c.what for c in version_diff(a, b)] == ["nccl", "bmc_firmware"]
    assert version_diff(a, a) == []


def test_version_strings_are_escaped() -> None:
    html = versions_html([VersionChange("driver", "<b>1", '"><script>alert(1)</script>', ("n<1>",))])
    assert "<script>" not in html and "<b>1" not in html and "n<1>" not in html
    hint = versions_html([], ("night-1", "x'; rm -rf / #<i>"))
    assert "hilt report --compare night-1 &#x27;x&#x27;&quot;&#x27;&quot;&#x27;; rm -rf / #&lt;i&gt;&#x27;" in hint
    assert "&lt;script&gt;" in html and "n&lt;1&gt;" in html


@needs_chromium
def test_changes_table_shows_the_driver_change(tmp_path: Path) -> None:
    page = build_report(driver_upgrade_nights(), tmp_path / "report.html")
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    (row,) = re.findall(r'<tr class="change".*?</tr>', dom, re.S)
    assert 'data-run="sim-night-20"' in row
    text = re.sub(r"<[^>]+>", "", row)
    assert f"driver {OLD} → {NEW} (node1, node2)" in text
    assert f"image {GOOD_IMAGE} → {REGRESSED_IMAGE}" in text
    assert "all differences: hilt report --compare sim-night-19 sim-night-20" in text


def test_fleet_change_point_on_one_node_lists_the_driver_change(tmp_path: Path, fleet) -> None:
    """Issue 19's acceptance: 30 nights, 4 nodes, gpu-03 12% slower from night 20 when the image brought
    driver 555: that change point (found on gpu-03's own line) lists the driver change beside it."""
    from tests.support.nights import NEW_DRIVER, OLD_DRIVER

    html = build_report(fleet(30), tmp_path / "report.html").read_text()
    rows = re.findall(r'<tr class="change"[^>]*data-metric="nccl.all_reduce.busbw[^"]*"[^>]*>.*?</tr>', html, re.S)
    (row,) = [r for r in rows if 'data-run="rack-a-night-20"' in r]
    text = re.sub(r"<[^>]+>", "", row)
    assert f"driver {OLD_DRIVER} → {NEW_DRIVER} (gpu-01, gpu-02, gpu-03, gpu-04)" in text
