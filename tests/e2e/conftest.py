"""End-to-end sessions against the simulated rack: few, because each boots a rack. Every test here is a ``rack``
test (and ``needs_root``), marked by the hook at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.markers import mark_rack
from tests.support.sessions import ROOT

RIGS = """\
default_rig: sim
lease_store: sqlite://leases.sqlite
history: history.sqlite
baselines_dir: {baselines}
health: {{bad_after: 3}}
rigs:
  sim:
    default_image: good
    provider:
      factory: hilt.sim.provider:SimProvider
      options: {{nodes: {nodes}, boot_delay_s: 1.0, name: e2e, subnet: 50, boot_timeout_s: 12, profile: {profile}}}
"""


@pytest.fixture
def sim_rig(tmp_path):
    def make(nodes: int = 2, profile: str = "sim-4gpu", baselines: Path = ROOT / "baselines") -> Path:
        rigs = tmp_path / "rigs.yaml"
        rigs.write_text(RIGS.format(nodes=nodes, baselines=baselines, profile=profile))
        return rigs

    return make


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_rack(items, Path(__file__).parent)
