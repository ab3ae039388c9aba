"""Issue 24: what a team hits on its first day, run as typed in this repository (the shipped rigs.yaml and
baselines, default options) on the default simulated rack.

Item 1: a run whose ``-k`` deselects every probe is not a gate; item 4: every error says each thing once;
item 11: `hilt baseline promote` of a multi-node run pools the nodes' samples.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from hilt.exitcodes import ExitCode
from hilt.lease import Holder, open_store
from hilt.util.locations import default_lease_store_url
from tests.support.sessions import ROOT, Session, as_typed, typed_command, typed_env

#: a series as the gate names it: ``nccl.all_reduce.busbw{nodes=1,size=67108864}``
SERIES = re.compile(r"[a-z_][a-z0-9_.]*\{[^{}]*\}")
#: things a message says at most once
ONCE = ("hilt baseline promote", "--allow-missing-baseline", "unbaselined", "regression", "inconclusive",
        "gate: not run")


def repeated(message: str) -> list[str]:
    """What one line of a message says more than once (a series, a remedy, an outcome)."""
    said = SERIES.findall(message)
    twice = sorted({s for s in said if said.count(s) > 1})
    return twice + [phrase for phrase in ONCE if message.count(phrase) > 1]


def summary(session: Session) -> dict:
    return json.loads((session.reports / "summary.json").read_text())


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    """Where the lease store and the history go ($XDG_STATE_HOME) for this module's commands."""
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def nccl_run(state, tmp_path_factory) -> Session:
    """``pytest suites --rig sim --image good -k test_nccl_tests``: the per-node nccl-tests probe on 4 nodes."""
    return as_typed(state, "pytest", "suites", "--rig", "sim", "--image", "good", "-k", "test_nccl_tests",
                    reports=tmp_path_factory.mktemp("nccl"))


def test_deselected_probes_do_not_make_a_run_a_gate(state, tmp_path, nccl_run):
    trust = as_typed(state, "pytest", "suites", "--rig", "sim", "--image", "good", "-k", "trust",
                     reports=tmp_path / "trust")
    assert trust.code == ExitCode.PASS, trust.output[-4000:]
    assert re.search(r"\b20 passed\b", trust.output), trust.output[-2000:]
    # the shipped suites warn about nothing: record_property (xunit1 only) warned 8 times under pytest's default
    # junit_family, and its values were dropped from junit.xml
    assert "warnings summary" not in trust.output and " warning" not in trust.output, trust.output[-4000:]
    last = [line for line in trust.output.splitlines() if line.startswith("hilt: ")][-1]
    assert last.startswith("hilt: gate: not run"), last
    assert trust.output.count("gate: not run") == 1, trust.output[-4000:]  # said once, at the end
    assert "not measured" not in trust.output  # a run that is not a gate owes no entry
    assert summary(trust)["gate"]["outcome"] == "not_run"
    # a run that keeps a probe is still a gate (the good image on 4 of the 13 gated entries: inconclusive)
    s = summary(nccl_run)
    assert s["gate"]["outcome"] == "inconclusive" and "gated: 4 of 13 entries measured" in s["gate"]["reason"]
    assert nccl_run.code == ExitCode.INCONCLUSIVE, nccl_run.output[-4000:]


def test_every_gate_error_says_each_thing_once(state, tmp_path):
    regressed = as_typed(state, "pytest", "suites", "--rig", "sim", "--image", "regressed", "-k",
                         "test_nccl_tests and not across", reports=tmp_path / "regressed")
    assert regressed.code == ExitCode.FAILED, regressed.output[-4000:]
    # a platform without baselines yet: every measured series is unbaselined, and the message says what to do
    (tmp_path / "no-baselines").mkdir()
    unbaselined = as_typed(state, "pytest", "suites", "--rig", "sim", "-k", "test_nccl_tests and not across",
                           "--baselines-dir", str(tmp_path / "no-baselines"), reports=tmp_path / "unbaselined")
    assert unbaselined.code == ExitCode.INCONCLUSIVE, unbaselined.output[-4000:]
    messages = []
    for session in (regressed, unbaselined):
        s = summary(session)
        messages += [t["message"] for t in s["tests"] if t["message"]]
        messages += [m["verdict"]["reason"] for m in s["metrics"] if m["verdict"]]
        messages += [e["why"] for e in s["coverage"]["entries"] if e["why"]]
        messages += [line for line in session.output.splitlines() if line.startswith(("FAILED", "ERROR"))]
    lines = [line for message in messages for line in message.splitlines()]
    assert any("unbaselined" in line and "hilt baseline promote" in line for line in lines), messages[:5]
    assert any("regression" in line for line in lines), messages[:5]
    doubled = {line: repeated(line) for line in lines if repeated(line)}
    assert not doubled, json.dumps(doubled, indent=1)[:4000]


def test_promote_of_a_four_node_run_pools_the_nodes_samples(state, tmp_path, nccl_run):
    repo = tmp_path / "repo"  # the shipped rigs.yaml and baselines, copied: promote writes the baselines
    repo.mkdir()
    shutil.copy(ROOT / "rigs.yaml", repo / "rigs.yaml")
    shutil.copytree(ROOT / "baselines", repo / "baselines")
    promoted = as_typed(state, "hilt", "baseline", "promote", str(nccl_run.reports), "--metric",
                        "nccl.all_reduce.busbw", cwd=repo)
    assert promoted.code == ExitCode.PASS, promoted.output[-4000:]
    def pooled(size: str) -> list[float]:
        measured = sorted((m for m in summary(nccl_run)["metrics"] if m["name"] == "nccl.all_reduce.busbw"
                           and m["labels"]["size"] == size), key=lambda m: m["node"])
        assert [m["node"] for m in measured] == ["node1", "node2", "node3", "node4"]
        return [s for m in measured for s in m["samples"]]

    entries = yaml.safe_load((repo / "baselines" / "sim-4gpu.yaml").read_text())["entries"]
    entry = next(e for e in entries if e["metric"] == "nccl.all_reduce.busbw" and e["labels"]["size"] == "67108864")
    assert entry["samples"] == pooled("67108864")
    assert entry["value"] == pytest.approx(sum(entry["samples"]) / len(entry["samples"]))
    # a size without an entry yet is added once, for the series (no node label), from every node
    added = [e for e in entries if e["metric"] == "nccl.all_reduce.busbw" and e["labels"]["size"] == "1048576"]
    assert len(added) == 1 and "node" not in added[0]["labels"] and added[0]["samples"] == pooled("1048576")


TEAM_SUITE = '''\
"""A team's own probes, named as the team likes (docs/suites.md)."""

import pytest


@pytest.mark.probe("nccl.all_reduce.busbw")
def test_our_allreduce(node, release_gate):
    pytest.skip(f"{node.name}: our all-reduce harness is not installed")


@pytest.mark.probe("torch.all_reduce.")
def test_our_torch_sweep(node, release_gate):
    assert node.name != "node2", "our sweep found a dead rank"
'''


def test_a_teams_own_probes_are_asked_why_their_metric_was_not_measured(state, tmp_path):
    """Item 12: coverage reads the probe marker, not the reference suites' test names."""
    repo = tmp_path / "ours"  # a team's repository: the shipped rigs.yaml and baselines, its own tests/
    (repo / "tests").mkdir(parents=True)
    shutil.copy(ROOT / "rigs.yaml", repo / "rigs.yaml")
    shutil.copytree(ROOT / "baselines", repo / "baselines")
    (repo / "tests" / "test_fabric.py").write_text(TEAM_SUITE)
    run = as_typed(state, "pytest", "tests", "--rig", "sim", cwd=repo, reports=tmp_path / "reports")
    assert run.code == ExitCode.FAILED, run.output[-4000:]  # node2's failure is the image's
    from hilt.record.run_record import CoverageEntry

    why = {e.key: e.why for e in map(CoverageEntry.model_validate, summary(run)["coverage"]["entries"])}
    nccl = "nccl.all_reduce.busbw{nodes=1,size=67108864}"
    torch = "torch.all_reduce.busbw{backend=gloo,nodes=1,size=16777216}"
    assert why[f"{nccl}@node1"] == "probe test_our_allreduce skipped: node1: our all-reduce harness is not installed"
    assert why[f"{torch}@node2"].startswith("probe test_our_torch_sweep failed before measuring it: AssertionError")
    assert why[f"{torch}@node1"] == f"probe test_our_torch_sweep ran on node node1 and recorded no {torch[:22]}"
    nvb = next(k for k in why if k.startswith("nvbandwidth.") and k.endswith("@node3"))
    assert why[nvb] == "no probe of nvbandwidth.device_to_device_memcpy_read_ce ran on node node3 (none selected)"


def test_sim_up_with_an_image_that_does_not_come_up_exits_6_naming_each_node(state, tmp_path):
    """Item 3: `hilt sim up --image NAME` returns once every node is verified, or says which is not."""
    try:
        up = as_typed(state, "hilt", "sim", "up", "--image", "broken", "--nodes", "2", cwd=tmp_path)
        assert up.code == ExitCode.INCONCLUSIVE, up.output[-4000:]
        error = [line for line in up.output.splitlines() if line.startswith("error: ")]
        assert len(error) == 1 and "broken not verified on node node1: " in error[0] and "; node node2: " in error[0]
        unknown = as_typed(state, "hilt", "sim", "up", "--image", "no-such-image", cwd=tmp_path)
        assert unknown.code == ExitCode.USAGE_ERROR and "its images: good, " in unknown.output
    finally:
        down = as_typed(state, "hilt", "sim", "down", cwd=tmp_path)
    assert "sim sim: down" in down.output


def test_sim_up_with_an_image_holds_the_nodes_lease_while_it_boots_and_is_refused_while_another_holder_has_one(
        state):
    """`hilt sim up --image good`, typed in this repository, leases the nodes it boots as `hilt run` on rig sim
    leases them (rig sim, the store rigs.yaml names: the default one in the state directory). Another holder of a
    node: refused before anything starts, naming the holder and its lease, exit 6. Without one: it boots, holding
    the lease meanwhile, and gives it back. Before: it booted whatever held the nodes (it could reboot them under a
    running `hilt run`), holding nothing."""
    store = open_store(default_lease_store_url({"XDG_STATE_HOME": str(state)}))
    other = Holder(user="alice", host="ci-3", pid=4242, ci_job="gitlab:77", purpose="hilt run nightly on rig sim")
    held = store.acquire(["sim/node2"], other, ttl_s=600)
    try:
        refused = as_typed(state, "hilt", "sim", "up", "--image", "good", "--nodes", "2", "--boot-delay", "2")
        assert refused.code == ExitCode.INCONCLUSIVE, refused.output[-4000:]
        [error] = [line for line in refused.output.splitlines() if line.startswith("error: ")]
        assert error.startswith("error: sim sim: not started, good not booted: no lease on rig sim's nodes"), error
        assert f"sim/node2 held by alice@ci-3 pid 4242 (CI gitlab:77) (lease {held.id}, purpose 'hilt run nightly" \
            in error
        assert "verified" not in refused.output and "sim" not in _sims(state)  # nothing started
        assert [lease.id for lease in store.list_leases()] == [held.id]

        store.release(held.id)
        argv = typed_command("hilt", "sim", "up", "--image", "good", "--nodes", "2", "--boot-delay", "2")
        up = subprocess.Popen(argv, cwd=ROOT, env=typed_env(state), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
        seen = set()
        while up.poll() is None:
            seen |= {(lease.nodes, lease.purpose) for lease in store.list_leases()}
            time.sleep(0.05)
        output = up.stdout.read()
        assert up.returncode == ExitCode.PASS, output[-4000:]
        assert "sim sim: good runs on node1, node2, each verified" in output
        assert seen == {(("sim/node1", "sim/node2"), "hilt sim up --image good (sim sim)")}, seen
        assert store.list_leases() == []  # given back once booted
    finally:
        store.close()
        as_typed(state, "hilt", "sim", "down")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_during_sim_up_s_boot_gives_the_lease_back_at_once_and_leaves_the_sim_up(state, tmp_path, signum):
    """A CI job's timeout (SIGTERM) or Ctrl-C while `hilt sim up --image good` boots the nodes it leased: it ends
    within seconds with exit 6 and one error line, the lease is given back before it exits (the next request for
    the nodes is granted at once), and the sim stays up, as after a failed boot. Before: SIGTERM killed it holding
    the lease, which blocked every run on the sim until its TTL (60 s) passed; Ctrl-C ended it with exit 2 and no
    word."""
    store = open_store(default_lease_store_url({"XDG_STATE_HOME": str(state)}))
    log = tmp_path / "sim-up.log"
    name = signal.Signals(signum).name
    try:
        argv = typed_command("hilt", "sim", "up", "--image", "good", "--nodes", "2", "--boot-delay", "15")
        with log.open("w") as out:
            up = subprocess.Popen(argv, cwd=ROOT, env={**typed_env(state), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 180
        while not re.search(r"node\d: booting", log.read_text()) and up.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert up.poll() is None and re.search(r"node\d: booting", log.read_text()), log.read_text()[-4000:]
        assert [lease.nodes for lease in store.list_leases()] == [("sim/node1", "sim/node2")]
        time.sleep(0.5)
        sent = time.monotonic()
        os.killpg(up.pid, signum)  # its process group, as a CI runner stops a job (the sim's daemon has its own)
        code = up.wait(timeout=120)
        took = time.monotonic() - sent
        assert store.list_leases() == [], "sim up left its lease to expire"
        later = store.acquire(["sim/node1", "sim/node2"], Holder.current(purpose="next run"), ttl_s=30)
        store.release(later.id)
        output = log.read_text()
        assert code == ExitCode.INCONCLUSIVE, output[-4000:]
        errors = [line for line in output.splitlines() if line.startswith("error: ")]
        assert errors == [f"error: sim sim: stopped by {name} while booting good, holding the lease on rig sim's "
                          "nodes: good not verified, the lease given back; the sim stays up (`hilt sim down` stops "
                          "it)"], output[-4000:]
        assert "Traceback" not in output and "each verified" not in output, output[-4000:]
        assert took < 20, f"sim up took {took:.1f} s to end after {name}"
        assert "sim" in _sims(state)  # still up, as after a boot that failed
    finally:
        store.close()
        as_typed(state, "hilt", "sim", "down")


def _sims(state: Path) -> dict:
    """`hilt sim status`: the sims registered now (running or stale), by name."""
    status = as_typed(state, "hilt", "sim", "status")
    assert status.code == 0, status.output
    return json.loads(status.output)
