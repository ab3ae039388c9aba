"""An outside test directory for the plugin: its own rigs.yaml whose provider only records that it started."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROVIDER = '''\
from pathlib import Path


class Provider:
    """Records that a session started it, then refuses: enough to see whether anything reserved the rig."""

    def start(self, rig_name, options, workdir):
        Path(__file__).with_name("provider-started").write_text(rig_name)
        from hilt.errors import InfrastructureError

        raise InfrastructureError("recording provider: started (and refusing)")

    def stop(self):
        pass
'''

RIGS = """\
default_rig: lab
lease_store: sqlite://leases.sqlite
rigs:
  lab:
    provider:
      factory: recording_provider:Provider
"""

TESTS = '''\
def test_on_a_node(node):
    assert node.name
'''


@dataclass
class Run:
    code: int
    output: str


@pytest.fixture
def outside_dir(tmp_path: Path) -> Path:
    """A directory outside this repository with a rigs.yaml and a conftest-free test file."""
    (tmp_path / "recording_provider.py").write_text(PROVIDER)
    (tmp_path / "rigs.yaml").write_text(RIGS)
    (tmp_path / "test_outside.py").write_text(TESTS)
    return tmp_path


def run_pytest(where: Path, *args: str) -> Run:
    env = {**os.environ, "PYTHONPATH": str(where), "HILT_NO_HISTORY": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=where,
                          capture_output=True, text=True, timeout=120, env=env)
    return Run(proc.returncode, proc.stdout + proc.stderr)
