"""`hilt rigs check` checks the whole chain: profiles, images, suites, and that every node's probe plan measures
the gated entries of its baselines (issue 13)."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from hilt.cli import app
from hilt.rig.check import check_chain
from hilt.rig.config import load_inventory
from tests.support.rigs import GOOD

ROOT = Path(__file__).resolve().parents[2]
NODE = GOOD[GOOD.index("    nodes:"):]


def rigs(tmp_path: Path, extra: str = "", nodes: str = NODE) -> Path:
    (tmp_path / "baselines").mkdir(exist_ok=True)
    text = GOOD.replace("lease_store:", "baselines_dir: baselines\nlease_store:")
    text = text[:text.index("    nodes:")] + nodes + extra
    path = tmp_path / "rigs.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    return check_chain(load_inventory(path), [ROOT / "suites"])


def test_the_shipped_chain_holds(tmp_path):
    path = rigs(tmp_path)
    shutil.copy(ROOT / "baselines/hgx-h100-8gpu.yaml", tmp_path / "baselines")
    assert problems(path) == []
    assert problems(ROOT / "rigs.yaml") == []


def test_a_plan_that_misses_a_gated_size_is_named_with_the_entry_and_the_plan(tmp_path):
    path = rigs(tmp_path)
    text = (ROOT / "baselines/hgx-h100-8gpu.yaml").read_text().replace("'17179869184'", "'34359738368'")
    (tmp_path / "baselines/hgx-h100-8gpu.yaml").write_text(text)
    found = problems(path)
    assert len(found) == 1, found
    assert found[0].startswith("rig staging-a node gpu-01 (profile hgx-h100-8gpu): gated entry "
                               "nccl.all_reduce.busbw{dtype=float,gpus_per_node=8,nodes=1,size=34359738368}: "
                               "size=34359738368 is not in the probe plan")
    assert "-b 8388608 -e 17179869184 -f 2 -d float -g 8" in found[0]


def test_unknown_profile_image_and_suite_are_named(tmp_path):
    path = rigs(tmp_path, extra="    suites: [test_nvlink, test_warp_drive]\n",
                nodes=NODE.replace("profile: hgx-h100-8gpu", "profile: hgx-b300"))
    path.write_text(path.read_text().replace("default_image: img-1.4.2", "default_image: img-9"))
    found = "\n".join(problems(path))
    assert "rig staging-a node gpu-01: profile hgx-b300: unknown profile 'hgx-b300'" in found
    assert "default_image 'img-9' is not an image" in found
    assert "suites: 'test_warp_drive' is not a suite module" in found and "test_nvlink'" not in found


def test_sim_nodes_with_their_own_profiles_are_checked_without_starting_anything(tmp_path):
    sim = ("    provider:\n      factory: hilt.sim.provider:SimProvider\n      options:\n        nodes:\n"
           "          - {name: gpu-01, profile: hgx-h100-8gpu}\n          - {name: r3-u17.gpu, profile: nope}\n")
    path = rigs(tmp_path, nodes=sim)
    path.write_text(path.read_text().replace("default_image: img-1.4.2", "default_image: good"))
    (tmp_path / "baselines/hgx-h100-8gpu.yaml").write_text(
        (ROOT / "baselines/hgx-h100-8gpu.yaml").read_text().replace("'17179869184'", "'34359738368'"))
    found = problems(path)
    assert len(found) == 1 and "unknown profile 'nope'" in found[0]
    path.write_text(path.read_text().replace("profile: nope", "profile: sim-4gpu"))
    found = problems(path)
    assert len(found) == 1 and found[0].startswith("rig staging-a node gpu-01 (profile hgx-h100-8gpu): gated entry")


def test_the_command_reports_the_chain_and_exits_4(tmp_path, monkeypatch):
    monkeypatch.setenv("IDRAC_USER", "u")
    monkeypatch.setenv("IDRAC_PASSWORD", "p")
    path = rigs(tmp_path, nodes=NODE.replace("profile: hgx-h100-8gpu", "profile: hgx-b300"))
    result = CliRunner().invoke(app, ["rigs", "check", str(path)])
    assert result.exit_code == 4 and "unknown profile 'hgx-b300'" in result.output


def shipped_with_lease_store(tmp_path: Path, url: str) -> Path:
    """The shipped rigs.yaml (and its baselines) with its commented ``lease_store:`` line set to ``url``."""
    shutil.copytree(ROOT / "baselines", tmp_path / "baselines")
    text = (ROOT / "rigs.yaml").read_text()
    assert "\n# lease_store: " in text  # the shipped file documents the field where a user would set it
    path = tmp_path / "rigs.yaml"
    path.write_text(text.replace("\n# lease_store: ", f"\nlease_store: {url}\n# ", 1))
    return path


def test_the_lease_store_url_is_checked_when_rigs_yaml_loads(tmp_path):
    """Issue 24 item 7: `hilt rigs check` said OK to a lease store no run could open."""
    good = CliRunner().invoke(app, ["rigs", "check", str(shipped_with_lease_store(tmp_path / "good",
                                                                                 "etcd://10.0.0.5:2379"))])
    assert good.exit_code == 0, good.output
    path = shipped_with_lease_store(tmp_path / "bogus", "bogus://x")
    line = path.read_text().splitlines().index("lease_store: bogus://x") + 1
    bogus = CliRunner().invoke(app, ["rigs", "check", str(path)])
    assert bogus.exit_code == 4
    assert f"rigs.yaml:{line}: lease_store: 'bogus://x' is not valid (unknown scheme 'bogus')" in bogus.output
    assert "etcd://host:port" in bogus.output  # what would be valid


def test_a_password_in_the_lease_store_url_is_refused_without_showing_it(tmp_path):
    path = shipped_with_lease_store(tmp_path, "etcd://user:s3cr/et@etcd.lab:2379")
    result = CliRunner().invoke(app, ["rigs", "check", str(path)])
    assert result.exit_code == 4
    assert "lease_store:" in result.output and "password_file= or password_env=" in result.output
    assert "s3cr" not in result.output and "et@" not in result.output
