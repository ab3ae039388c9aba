"""Which lease `hilt sim up --image` takes: the one a run on the rig that uses the sim takes (hilt/sim/lease_target.py).

No rack: only rigs.yaml files and the environment. The boot itself, refused and granted, is in
tests/e2e/test_first_day.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.errors import ConfigError
from hilt.sim.lease_target import LeaseTarget, lease_target
from tests.support.sessions import ROOT

RIGS = """\
default_rig: {default}
lease_store: sqlite:///var/tmp/hilt-test-leases.sqlite
rigs:
  lab:
    nodes:
      gpu-01:
        bmc: {{url: "https://10.0.0.11", username: root, password: "${{BMC_PASS}}"}}
        ssh: {{host: 10.0.1.11, user: hilt, key: ~/.ssh/hilt_ed25519}}
        profile: hgx-h100-8gpu
  islands-rig:
    provider: {{factory: "hilt.sim.provider:SimProvider", options: {{name: islands, nodes: 2, subnet: 1}}}}
  sim:
    provider: {{factory: "hilt.sim.provider:SimProvider", options: {{nodes: 2}}}}
  also-sim:
    provider: {{factory: "hilt.sim.provider:SimProvider", options: {{name: sim, nodes: 2}}}}
"""


@pytest.fixture
def rigs(tmp_path: Path) -> Path:
    path = tmp_path / "rigs.yaml"
    path.write_text(RIGS.format(default="lab"))
    return path


def test_the_rig_that_runs_the_sim_and_its_store(rigs):
    assert lease_target("islands", rigs_file=rigs) == LeaseTarget("islands-rig", "sqlite:///var/tmp/hilt-test-leases.sqlite")
    # two rigs on one sim: the first in the file, unless default_rig is one of them
    assert lease_target("sim", rigs_file=rigs).rig == "sim"
    rigs.write_text(RIGS.format(default="also-sim"))
    assert lease_target("sim", rigs_file=rigs).rig == "also-sim"


def test_options_win_over_rigs_yaml(rigs):
    target = lease_target("sim", rigs_file=rigs, rig="also-sim", store_url="etcd://127.0.0.1:2379")
    assert target == LeaseTarget("also-sim", "etcd://127.0.0.1:2379")


def test_the_shipped_rigs_yaml_from_the_checkout(monkeypatch):
    """`hilt sim up --image good` typed in this repository takes the lease `hilt run` on rig sim takes."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("XDG_STATE_HOME", "/var/tmp/hilt-state")
    assert lease_target("sim") == LeaseTarget("sim", "sqlite:///var/tmp/hilt-state/hilt/leases.sqlite")
    assert lease_target("islands").rig == "sim-islands"


def test_without_rigs_yaml_the_sims_name_in_the_default_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert lease_target("sim") == LeaseTarget("sim", f"sqlite://{tmp_path}/state/hilt/leases.sqlite")
    assert lease_target("sim", rig="bench").rig == "bench"


def test_bad_names_are_refused_naming_what_is_valid(rigs, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown rig 'nope'; known rigs: also-sim, islands-rig, lab, sim"):
        lease_target("sim", rigs_file=rigs, rig="nope")
    with pytest.raises(ConfigError, match="no-such.yaml: no such rigs file"):
        lease_target("sim", rigs_file=tmp_path / "no-such.yaml")
    rigs.write_text("rigs: [\n")
    with pytest.raises(ConfigError, match="rigs.yaml"):
        lease_target("sim", rigs_file=rigs)
