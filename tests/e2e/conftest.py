"""End-to-end sessions against the simulated rack: few, because each boots a rack (needs root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
    if os.geteuid() != 0:
        pytest.fail("the simulated rack needs root (network namespaces); run the tests as root")

    def make(nodes: int = 2, profile: str = "sim-4gpu", baselines: Path = ROOT / "baselines") -> Path:
        rigs = tmp_path / "rigs.yaml"
        rigs.write_text(RIGS.format(nodes=nodes, baselines=baselines, profile=profile))
        return rigs

    return make
