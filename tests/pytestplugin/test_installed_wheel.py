"""Acceptance (issue 14): hilt as another team installs it. The wheel goes into a fresh virtualenv, and a test
directory outside this repository (its own rigs.yaml on the simulated rack, conftest-free tests using `node`,
`lease_nodes` and `release_gate`) runs against it; `pytest --fixtures` there lists hilt's fixtures and starts
nothing. One rack test (tests/pytestplugin/conftest.py): it boots a two-node simulated rack (needs root; run it
under the rack lock)."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

RIGS = """\
default_rig: sim
lease_store: sqlite://leases.sqlite
history: history.sqlite
baselines_dir: baselines
rigs:
  sim:
    default_image: good
    provider:
      factory: hilt.sim.provider:SimProvider
      options: {nodes: 2, boot_delay_s: 1.0, name: wheel, subnet: 51, boot_timeout_s: 12}
"""

TESTS = '''\
from hilt.probes import runner
from hilt.probes.suite_support import remeasurer


def test_kernel_answers(node):
    assert node.run(["uname", "-r"]).stdout.strip()


def test_the_lease_holds_both_nodes(lease_nodes):
    assert sorted(n.name for n in lease_nodes) == ["node1", "node2"]


def test_nccl_bandwidth_is_gated(node, probe_settings, release_gate):
    def probe():
        return runner.run_nccl_tests([node], "all_reduce_perf", probe_settings.nccl_tests_args,
                                     timeout_s=probe_settings.timeout_s)[1]

    gated = [m for m in probe() if m.name == "nccl.all_reduce.busbw"]
    assert gated
    for metric in gated:
        release_gate.check(metric, remeasurer(metric, probe))
'''


def _fresh_venv(where: Path, wheelhouse: Path) -> Path:
    """A new virtualenv holding the built wheel. Its dependencies come from this environment's site-packages
    (a .pth line, processed before nothing of hilt's), so the test proves the wheel's contents, not pip's
    resolver, and stays fast."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheelhouse), str(ROOT)], check=True, capture_output=True, text=True, timeout=300)
    wheel = next(wheelhouse.glob("hilt-*.whl"))
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    target = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    (target / "zz-borrowed-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    str(wheel)], check=True, capture_output=True, text=True, timeout=300)
    return python


def _outside_dir(where: Path) -> Path:
    (where / "tests").mkdir(parents=True)
    (where / "rigs.yaml").write_text(RIGS)
    (where / "tests" / "test_team.py").write_text(TESTS)
    # the team's own baselines: the simulated rack's nccl-tests entries of this repository's file
    data = yaml.safe_load((ROOT / "baselines" / "sim-4gpu.yaml").read_text())
    data["gated"] = [g for g in data.get("gated") or [] if g["metric"] == "nccl.all_reduce.busbw"]
    data["entries"] = [e for e in data["entries"] if e["metric"] == "nccl.all_reduce.busbw"]
    (where / "baselines").mkdir()
    (where / "baselines" / "sim-4gpu.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return where


def test_wheel_in_a_fresh_venv_runs_a_team_suite_on_the_simulated_rack(tmp_path):
    python = _fresh_venv(tmp_path / "venv", tmp_path / "wheelhouse")
    team = _outside_dir(tmp_path / "team")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HILT_RIGS", "HILT_RIG")}
    env["HILT_NO_HISTORY"] = "1"

    where = subprocess.run([python, "-c", "import hilt.pytestplugin as p; print(p.__file__)"], cwd=team, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert str(tmp_path / "venv") in where, f"hilt imported from {where}, not from the installed wheel"

    listing = subprocess.run([python, "-m", "pytest", "--fixtures", "--rig", "sim", "-p", "no:cacheprovider"],
                             cwd=team, env=env, capture_output=True, text=True, timeout=120)
    for fixture in ("node", "lease_nodes", "release_gate", "record_metric", "probe_settings", "profile"):
        assert f"\n{fixture} -- " in listing.stdout or f"\n{fixture} [" in listing.stdout, listing.stdout[-3000:]
    assert "hilt: " not in listing.stdout and not (team / "reports").exists(), "listing started the rig"

    run = subprocess.run([python, "-m", "pytest", "tests", "--rig", "sim", "-rA", "-p", "no:cacheprovider"],
                         cwd=team, env=env, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert "5 passed" in output, output[-3000:]
    assert "hilt: gate PASS" in output, output[-3000:]
