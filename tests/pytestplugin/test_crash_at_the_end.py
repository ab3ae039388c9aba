"""A crash in hilt's own code while the run's record is completed (docs/ci.md, "How a run ends"): every output is
still written from the record as far as it got, the history append included, so the nightly trend and `hilt
history` see the run as inconclusive with its ``internal_error``.

No rack: the provider is a real one (the RigProvider protocol) whose node's BMC refuses connections, so its
health check fails at once and the run ends with a record; a plugin passed with ``-p`` breaks the coverage
judgement that ``RunCollector.close`` calls, where a bug's exception would come from.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from hilt.exitcodes import ExitCode
from hilt.history.open import open_history
from tests.support.sessions import session_env

PROVIDER = '''\
class Provider:
    """One node whose BMC and SSH refuse connections: the session starts, the node fails its health check."""

    def start(self, rig_name, options, workdir):
        return {"nodes": {"gpu-01": {
            "bmc": {"url": "https://127.0.0.1:9", "username": "admin", "password": "${CRASH_BMC_PASSWORD}"},
            "ssh": {"host": "127.0.0.1", "port": 9, "user": "hilt", "key": "/nonexistent/key"},
            "profile": "sim-4gpu",
        }}}

    def stop(self):
        pass
'''

BUG = '''\
"""A bug in hilt's own code, as a real one appears: the coverage judgement RunCollector.close calls raises."""
import hilt.gate.coverage as coverage


def broken(*args, **kwargs):
    raise KeyError("injected bug")


coverage.judge_coverage = broken
'''

RIGS = """\
default_rig: lab
lease_store: sqlite://leases.sqlite
history: history.sqlite
rigs:
  lab:
    provider:
      factory: crash_provider:Provider
"""

TESTS = '''\
def test_on_a_node(node):
    assert node.name
'''


def test_a_crash_while_the_record_is_completed_still_appends_the_history_and_writes_every_report(
        tmp_path: Path) -> None:
    """Before: only summary.json, summary.md and metrics.prom; no history append, no JUnit properties, no Allure
    environment."""
    (tmp_path / "crash_provider.py").write_text(PROVIDER)
    (tmp_path / "hilt_bug.py").write_text(BUG)
    (tmp_path / "rigs.yaml").write_text(RIGS)
    (tmp_path / "test_crash.py").write_text(TESTS)
    reports = tmp_path / "reports"
    env = session_env(PYTHONPATH=str(tmp_path), CRASH_BMC_PASSWORD="x")
    env.pop("HILT_NO_HISTORY", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-p", "no:randomly", "-p", "hilt_bug", "--rig", "lab", "--rigs-file",
                           str(tmp_path / "rigs.yaml"), "--hilt-reports", str(reports), "test_crash.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == ExitCode.INTERNAL_ERROR, output[-4000:]
    assert "Traceback (most recent call last)" in proc.stderr and "KeyError: 'injected bug'" in proc.stderr, \
        proc.stderr[-4000:]

    summary = json.loads((reports / "summary.json").read_text())
    assert summary["internal_error"] == "KeyError: 'injected bug'", summary["internal_error"]
    assert summary["gate"]["outcome"] == "inconclusive", summary["gate"]
    assert summary["output_problems"] == [], summary["output_problems"]

    listed = subprocess.run([sys.executable, "-m", "hilt.cli", "history", "list", "--history",
                             str(tmp_path / "history.sqlite"), "--json"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    [run] = json.loads(listed.stdout)["runs"]
    assert run["run_id"] == summary["run_id"] and run["gate"] == "inconclusive", run
    [stored] = open_history(tmp_path / "history.sqlite").runs()  # what the nightly trend reads
    assert stored.internal_error == "KeyError: 'injected bug'" and stored.exit_code == ExitCode.INTERNAL_ERROR

    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties.get("hilt.run_id") == summary["run_id"], properties
    environment = (reports / "allure-results" / "environment.properties").read_text()
    assert summary["run_id"] in environment, environment
    assert (reports / "allure-results" / "categories.json").exists()
