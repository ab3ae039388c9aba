"""A node whose Python has no torch (hilt[probes] not installed there), reached over real SSH (OpenSSH sshd).

The probe must not die on the node with Python's ModuleNotFoundError, read as the image's failure: it is the
node's setup, an infrastructure error naming the extra to install.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path
from xml.etree import ElementTree

import pytest

from hilt.errors import InfrastructureError
from hilt.node.ssh import Node
from hilt.probes import runner
from hilt.probes.errors import ProbeDependencyMissing
from hilt.rig.config import BmcConfig, NodeConfig, SshConfig
from tests.support.sessions import session_env
from tests.support.sshd import start_sshd

# probe runs on this host leave run directories under /tmp and tagged processes, which these tests look for:
# under `make test-fast` (-n, --dist loadgroup) the modules that run probes here share one worker
pytestmark = pytest.mark.xdist_group("local-probes")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> str:
    """A Python without torch: a fresh venv of this interpreter's base, with no site packages."""
    directory = tmp_path_factory.mktemp("bare-venv")
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(directory)
    python = directory / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('torch'))"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "None"  # the premise: this Python really has no torch
    return str(python)


def node_config(sshd, python: str) -> NodeConfig:
    return NodeConfig(
        bmc=BmcConfig(url="https://127.0.0.1:1", username="${U}", password="${P}"),
        ssh=SshConfig(host="127.0.0.1", port=sshd.port, user=sshd.user, key=str(sshd.client_key),
                      host_key=sshd.host_key, python=python, connect_timeout_s=5),
        profile="sim-4gpu",
    )


def test_probe_on_a_node_without_torch_is_an_infrastructure_error_naming_the_extra(sshd, bare_python):
    before = set(Path("/tmp").glob("hilt-probe-*"))
    with Node("gpu7", node_config(sshd, bare_python)) as node:
        with pytest.raises(ProbeDependencyMissing) as caught:
            runner.ddp([node], grad_mb=1, steps=2, timeout_s=30)
        message = str(caught.value)
        assert isinstance(caught.value, InfrastructureError)
        assert "node gpu7" in message and "torch" in message and bare_python in message
        assert "pip install 'hilt[probes]'" in message and "ModuleNotFoundError" not in message
        assert "\n" not in message
        with pytest.raises(ProbeDependencyMissing, match=r"copybw\.py probe needs torch"):
            runner.run_copy_bandwidth(_WithGpu(node), [2**20], repeats=1)
    assert set(Path("/tmp").glob("hilt-probe-*")) == before  # nothing staged on the node


class _WithGpu:
    """The node as it is, except that it says it has a GPU, so the copy probe goes on to stage its script."""

    def __init__(self, node: Node):
        self._node = node

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._node, name)

    def run(self, argv, timeout=60, check=True, on_output=None):  # noqa: ANN001, ANN201
        if argv[:2] == ["sh", "-c"] and "nvidia-smi -L" in argv[2]:
            argv = ["echo", "GPU 0: simulated (UUID: GPU-0)"]
        return self._node.run(argv, timeout=timeout, check=check, on_output=on_output)


PROBE_TEST = """\
import os

from hilt.rig.config import NodeConfig
from hilt.node.ssh import Node
from hilt.probes import runner


def test_torch_allreduce():
    config = NodeConfig.model_validate_json(os.environ["NODE_CONFIG"])
    with Node("gpu7", config) as node:
        runner.run_torch_allreduce([node], [2**20], repeats=1, warmup=0, timeout_s=30)
"""


def test_pytest_reports_it_as_an_error_of_the_rig_not_a_failure_of_the_image(sshd, bare_python, tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE_TEST)
    junit = tmp_path / "junit.xml"
    env = session_env(NODE_CONFIG=node_config(sshd, bare_python).model_dump_json(), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={junit}",
                           "test_probe.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    case = ElementTree.parse(junit).getroot().find("testsuite/testcase")
    assert case.find("failure") is None, "a missing torch on the node was reported as the image's failure"
    error = case.find("error")
    assert error is not None and "pip install 'hilt[probes]'" in error.get("message", "")
    assert "1 error" in done.stdout
