"""`hilt rigs` shows the live nodes of a provided rig that is up (`hilt sim up`), with BMC power and SSH."""

from __future__ import annotations

from typer.testing import CliRunner

from hilt.cli import app
from hilt.sim.lifecycle import sim_down, sim_up


def test_rigs_table_shows_a_running_sim(tmp_path):
    rigs = tmp_path / "rigs.yaml"
    rigs.write_text(f"""
default_rig: trigs
lease_store: sqlite://{tmp_path}/leases.sqlite
rigs:
  trigs:
    provider: {{factory: "hilt.sim.provider:SimProvider", options: {{name: trigs, subnet: 78}}}}
""")
    before = CliRunner().invoke(app, ["rigs", "--rigs-file", str(rigs)], env={"COLUMNS": "200"})
    assert "nodes provided at run time" in before.output
    sim_up("trigs", nodes=2, subnet=78, state_dir=tmp_path / "sim")
    try:
        result = CliRunner().invoke(app, ["rigs", "--rigs-file", str(rigs)], env={"COLUMNS": "200"})
    finally:
        sim_down("trigs")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "node" in line and "trigs" in line]
    assert len(rows) == 2 and all("Off" in row and "down" in row for row in rows), result.output
