"""A test's identity (hilt.pytestplugin.identity) on real pytest collections: the same however it is invoked, and
the same as the history gives the node ids older hilt recorded (issue 24 item 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hilt.history.test_ids import legacy_test_id

ROOT = Path(__file__).resolve().parents[2]

# A plugin that prints each collected item's node id and identity, without starting any rig session.
SHOW = '''\
import json

from hilt.pytestplugin.identity import item_test_id


def pytest_collection_finish(session):
    for item in session.items:
        print("ID", json.dumps([item.nodeid, item_test_id(item)]))
'''

TEAM = '''\
from hilt.suites.test_nccl import test_nccl_tests  # noqa: F401  a reference test, imported


def test_driver_loaded(node):
    pass


class TestLinks:
    def test_up(self, node):
        pass
'''


def collect(plugin: Path, cwd: Path, *args: str) -> dict[str, str]:
    """node id -> identity of every test ``pytest --collect-only <args>`` collects from ``cwd``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "show_ids",
                           "-p", "no:cacheprovider", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(line[3:]) for line in proc.stdout.splitlines() if line.startswith("ID "))


def test_identity_does_not_depend_on_the_invocation(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "show_ids.py").write_text(SHOW)
    repo = tmp_path / "our-gpu-tests"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "test_team.py").write_text(TEAM)
    from_repo = collect(plugin, repo, "tests")
    from_tests = collect(plugin, repo / "tests", ".")
    reference = collect(plugin, ROOT, "suites/test_nccl.py")
    pyargs = collect(plugin, ROOT, "--pyargs", "hilt.suites.test_nccl")

    assert set(from_repo) != set(from_tests)  # pytest's node ids differ with the directory it ran from...
    assert sorted(from_repo.values()) == sorted(from_tests.values()) == [  # ...the identities do not
        "hilt.suites.test_nccl::test_nccl_tests", "test_team::TestLinks::test_up",
        "test_team::test_driver_loaded"]
    assert set(reference.values()) == set(pyargs.values())
    assert "hilt.suites.test_nccl::test_nccl_tests" in pyargs.values()
    assert set(reference) != set(pyargs)  # suites/test_nccl.py::... and hilt/suites/test_nccl.py::...
    # a history written before identities were recorded gets the same ones from the node ids alone
    for collected in (from_repo, from_tests, reference, pyargs):
        assert {legacy_test_id(nodeid) for nodeid in collected} == set(collected.values())
