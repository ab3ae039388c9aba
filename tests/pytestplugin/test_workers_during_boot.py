"""Under xdist the workers start while the controller boots the nodes (bench/session_scaling.py: each worker is a
second of CPU that used to come after the boot), sized from the plan; every way the boot can end reaches them.

The provider is a real one (the RigProvider protocol, with ``planned``); its nodes' BMCs refuse connections, so
their health check fails at once and no test touches a node: what is checked is the session's flow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hilt.exitcodes import ExitCode
from tests.support.sessions import session_env

PROVIDER = '''\
import os
import time
from pathlib import Path

from hilt.errors import ConfigError, InfrastructureError

NODES = ["gpu-01", "gpu-02", "gpu-03"]


class Provider:
    """Its start() returns only once every xdist worker has started (or after 300 s, as a hang guard): workers
    that start after the boot would make it wait the whole guard and the test fail."""

    def planned(self, rig_name, options):
        return {"nodes": {name: "sim-4gpu" for name in NODES}, "images": []}

    def start(self, rig_name, options, workdir):
        here = Path(os.environ["TEAM_DIR"])
        deadline = time.monotonic() + 300
        while len(list(here.glob("worker-*.started"))) < len(NODES) and time.monotonic() < deadline:
            time.sleep(0.05)
        (here / "boot.done").write_text(str(len(list(here.glob("worker-*.started")))))
        if options.get("fail") == "config":
            raise ConfigError("rigs.yaml:7: provider: the rack refused the allocation")
        if options.get("fail") == "infrastructure":
            raise InfrastructureError("the rack's allocator did not answer")
        return {"nodes": {name: {
            "bmc": {"url": "https://127.0.0.1:9", "username": "admin", "password": "${TEAM_BMC_PASSWORD}"},
            "ssh": {"host": "127.0.0.1", "port": 9, "user": "hilt", "key": "/nonexistent/key"},
            "profile": "sim-4gpu",
        } for name in NODES}}

    def stop(self):
        pass
'''

RIGS = """\
default_rig: lab
lease_store: sqlite://leases.sqlite
rigs:
  lab:
    provider:
      factory: team_provider:Provider
      options: {{fail: {fail}}}
"""

CONFTEST = '''\
import os
from pathlib import Path


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        Path(os.environ["TEAM_DIR"], f"worker-{worker}.started").write_text(str(os.getpid()))
'''

TESTS = '''\
def test_a(node):
    pass
'''


def _run(tmp_path: Path, fail: str) -> subprocess.CompletedProcess:
    (tmp_path / "team_provider.py").write_text(PROVIDER)
    (tmp_path / "rigs.yaml").write_text(RIGS.format(fail=fail))
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_team.py").write_text(TESTS)
    env = session_env(PYTHONPATH=str(tmp_path), HILT_NO_HISTORY="1", TEAM_DIR=str(tmp_path), TEAM_BMC_PASSWORD="x")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig", "lab", "-n", "1",
                           "--workers-from-lease", "test_team.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=env)


def test_workers_start_while_the_nodes_boot_one_per_planned_node(tmp_path: Path) -> None:
    proc = _run(tmp_path, "null")
    output = proc.stdout + proc.stderr
    assert (tmp_path / "boot.done").read_text() == "3", "the workers started only after the boot"
    assert "3 workers [3 items]" in output, output[-3000:]
    # every node failed its health check: each test errors as infrastructure, the run is inconclusive
    assert proc.returncode == ExitCode.INCONCLUSIVE, output[-3000:]
    assert "3 errors" in output and "failed its health check" in output, output[-3000:]


def test_a_config_error_in_the_boot_is_a_usage_error_and_no_worker_is_left_waiting(tmp_path: Path) -> None:
    proc = _run(tmp_path, "config")
    output = proc.stdout + proc.stderr
    assert proc.returncode == ExitCode.USAGE_ERROR, output[-3000:]
    assert "the rack refused the allocation" in output
    assert "Traceback" not in output, output[-3000:]


def test_an_infrastructure_error_in_the_boot_reaches_every_test(tmp_path: Path) -> None:
    proc = _run(tmp_path, "infrastructure")
    output = proc.stdout + proc.stderr
    assert proc.returncode == ExitCode.INCONCLUSIVE, output[-3000:]
    assert "the rack's allocator did not answer" in output, output[-3000:]
