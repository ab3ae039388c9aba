"""An outside test directory for the plugin: its own rigs.yaml whose provider only records that it started."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.markers import mark_rack

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


@pytest.fixture
def outside_dir(tmp_path: Path) -> Path:
    """A directory outside this repository with a rigs.yaml and a conftest-free test file."""
    (tmp_path / "recording_provider.py").write_text(PROVIDER)
    (tmp_path / "rigs.yaml").write_text(RIGS)
    (tmp_path / "test_outside.py").write_text(TESTS)
    return tmp_path


RACK = ("test_installed_wheel.py::test_wheel_in_a_fresh_venv_runs_a_team_suite_on_the_simulated_rack",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_rack(items, Path(__file__).parent, only=RACK)
