"""The typed session hand-off: workers get every node's config, profile, suites, baselines and history from the
controller's state (credentials as references), and rigs.yaml is read once per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.sessions import session_env

PROVIDER = '''\
class Provider:
    """One node whose BMC refuses connections: its health check fails fast and the session goes on without it."""

    def start(self, rig_name, options, workdir):
        return {"nodes": {"gpu-01": {
            "bmc": {"url": "https://127.0.0.1:9", "username": "${TEAM_BMC_USER}", "password": "${TEAM_BMC_PASSWORD}"},
            "ssh": {"host": "127.0.0.1", "port": 9, "user": "hilt", "key": "/nonexistent/key"},
            "profile": "sim-4gpu",
        }}}

    def stop(self):
        pass
'''

RIGS = """\
default_rig: lab
lease_store: sqlite://leases.sqlite
baselines_dir: team-baselines
history: team-history.sqlite
rigs:
  lab:
    suites: [test_team]
    provider:
      factory: state_provider:Provider
"""

# counts, per process, how often anything reads rigs.yaml (the plugin and the session import it by name)
CONFTEST = '''\
import os
from pathlib import Path

import hilt.rig.config
import hilt.session.rig_session

_real = hilt.rig.config.load_inventory


def _counting(path, *args, **kwargs):
    with open(Path(__file__).with_name("loads.log"), "a") as log:
        log.write(f"{os.getpid()} {Path(path).name} {os.environ.get('PYTEST_XDIST_WORKER', 'controller')}\\n")
    return _real(path, *args, **kwargs)


hilt.rig.config.load_inventory = _counting
hilt.session.rig_session.load_inventory = _counting
'''

TESTS = '''\
def test_a(node):
    pass


def test_b(node):
    pass
'''


def test_workers_get_typed_state_and_rigs_yaml_is_read_once(tmp_path: Path):
    (tmp_path / "state_provider.py").write_text(PROVIDER)
    (tmp_path / "rigs.yaml").write_text(RIGS)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_team.py").write_text(TESTS)
    env = session_env(PYTHONPATH=str(tmp_path), HILT_NO_HISTORY="1", TEAM_BMC_USER="admin",
                      TEAM_BMC_PASSWORD="never-in-the-state-file")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig", "lab", "-n", "2",
                           "test_team.py"], cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    output = proc.stdout + proc.stderr

    state_file = next((tmp_path / "reports" / ".hilt").glob("*/session.json"))
    text = state_file.read_text()
    assert "never-in-the-state-file" not in text
    state = json.loads(text)
    assert state["configs"]["gpu-01"]["bmc"]["password"] == "${TEAM_BMC_PASSWORD}"
    assert state["configs"]["gpu-01"]["profile"] == "sim-4gpu"
    assert state["suites"] == ["test_team"]
    assert Path(state["baselines_dir"]) == tmp_path / "team-baselines"
    assert Path(state["history"]) == tmp_path / "team-history.sqlite"
    assert "gpu-01 failed its health check" in output, output[-3000:]

    loads = (tmp_path / "loads.log").read_text().splitlines()
    by_process: dict[str, list[str]] = {}
    for line in loads:
        pid, name, who = line.split()
        by_process.setdefault(f"{who}:{pid}", []).append(name)
    assert all(who.startswith("controller") for who in by_process), f"a worker read rigs.yaml: {by_process}"
    assert [len(names) for names in by_process.values()] == [1], f"rigs.yaml read more than once: {by_process}"
