"""One test, one history, however the suites were invoked (issue 24 item 5): `pytest suites` and `hilt run`
record the same identity for the reference suites' tests, so the nightly report shows one test with both runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from hilt.exitcodes import ExitCode
from hilt.report.cli import report_app
from tests.support.sessions import ROOT, run_suites


def test_pytest_suites_and_hilt_run_record_one_test(sim_rig):
    rigs = sim_rig(nodes=1)
    first = run_suites(rigs, suites="suites/test_boot.py")
    assert first.code == ExitCode.PASS, first.output[-4000:]
    reports = rigs.parent / "reports-hilt-run"
    second = subprocess.run(
        [sys.executable, "-m", "hilt.cli", "run", "--rigs-file", str(rigs), "--reports", str(reports),
         "-k", "test_boot"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HILT_NO_HISTORY": ""})
    # `hilt run` is a release gate whatever -k selects: the boot tests alone measure nothing, so INCONCLUSIVE
    assert second.returncode in (ExitCode.PASS, ExitCode.INCONCLUSIVE) and " 2 passed" in second.stdout, \
        (second.stdout + second.stderr)[-4000:]

    by_run = [{t["test_id"]: t["nodeid"] for t in json.loads((where / "summary.json").read_text())["tests"]}
              for where in (first.reports, reports)]
    assert by_run[0].keys() == by_run[1].keys() == {
        "hilt.suites.test_boot::test_image_identity[node1]", "hilt.suites.test_boot::test_fresh_boot[node1]"}
    nodeids = [run["hilt.suites.test_boot::test_fresh_boot[node1]"] for run in by_run]
    assert nodeids[0] == "suites/test_boot.py::test_fresh_boot[node1]"  # pytest's ids differ with the invocation
    assert nodeids[1] != nodeids[0] and nodeids[1].endswith("test_boot.py::test_fresh_boot[node1]")

    out = rigs.parent / "report.html"
    done = CliRunner().invoke(report_app, ["--since", "all", "-o", str(out), "--history",
                                           str(rigs.parent / "history.sqlite")])
    assert done.exit_code == 0, done.output
    tests = out.read_text().split('<section id="tests">', 1)[1].split("</section>", 1)[0]
    assert tests.count('<tr class="test-history"') == 2  # two tests, each with both runs: not four halves
    assert tests.count("passed 2 of 2 nights") == 2
