"""Acceptance on each store: 16 processes contending for 4 nodes, a holder killed with SIGKILL, a lease broken
from the CLI while its holder runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hilt.errors import LeaseLost
from hilt.lease import Holder, LeaseKeeper
from testkit.lease_checker import double_grants, load

WORKER = str(Path(__file__).resolve().parents[2] / "testkit" / "lease_worker.py")
PROCESSES, ROUNDS = 16, 3


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()  # by PID: only processes this test started
            proc.wait()


def test_16_processes_contend_for_4_nodes_without_double_grant(store_url, tmp_path):
    marks, go = tmp_path / "marks", tmp_path / "go"
    marks.mkdir()
    logs = [tmp_path / f"grants-{i}.jsonl" for i in range(PROCESSES)]
    procs = [_spawn("contend", store_url, str(logs[i]), str(marks), str(ROUNDS), str(i), str(go))
             for i in range(PROCESSES)]
    try:
        time.sleep(1.0)  # let them import and open the store, then start them together
        go.touch()
        deadline = time.monotonic() + 100
        for proc in procs:
            proc.wait(timeout=max(1, deadline - time.monotonic()))
        outputs = [proc.stdout.read().decode() for proc in procs]
        assert [p.returncode for p in procs] == [0] * PROCESSES, "\n".join(outputs)
    finally:
        _stop(procs)
    records = load(logs)
    assert double_grants(records) == []
    # every process got every one of its turns, each within a bounded wait
    per_pid: dict[int, int] = {}
    for r in records:
        per_pid[r["pid"]] = per_pid.get(r["pid"], 0) + 1
    assert sorted(per_pid.values()) == [ROUNDS] * PROCESSES
    assert max(r["granted"] - r["asked"] for r in records) < 60
    # the checker is not blind: a crafted overlap is caught
    fake = dict(records[0], pid=-1, granted=records[0]["granted"] + 1e-4)
    assert double_grants([records[0], fake])


def test_sigkilled_holder_loses_its_nodes_to_a_waiter_within_ttl(store_url, tmp_path, store):
    ttl = 2.0
    ready = tmp_path / "ready"
    victim = _spawn("hold", store_url, "n0,n1", str(ttl), str(ready))
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert victim.poll() is None, victim.stdout.read().decode()
            assert time.monotonic() < deadline, "holder never got its lease"
            time.sleep(0.05)
        victim_lease = ready.read_text()
        time.sleep(ttl)  # the holder's keeper has renewed at least once: it is alive and well
        assert store.is_held(victim_lease)
        got: list = []
        queued = threading.Event()
        waiter = threading.Thread(target=lambda: got.append(store.acquire(
            ["n0", "n1"], Holder.current("waiter"), ttl_s=30, wait_s=15, on_wait=lambda w: queued.set())))
        waiter.start()
        assert queued.wait(5)
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.monotonic()
        waiter.join(15)
        granted = time.monotonic()
    finally:
        _stop([victim])
    assert got and got[0].nodes == ("n0", "n1")
    assert granted - killed <= ttl + 1.0


def test_break_from_the_cli_makes_the_holders_keeper_report_lost(store_url, store):
    lease = store.acquire(["rig/n1", "rig/n2"], Holder.current("suites"), ttl_s=3)
    with LeaseKeeper(store, lease) as keeper:  # renews every second
        keeper.check()
        cli = subprocess.run([sys.executable, "-m", "hilt.lease.cli", "leases", "break", "rig/n2",
                              "--why", "urgent firmware fix", "--by", "oncall", "--lease-store", store_url],
                             capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert f"broke lease {lease.id}" in cli.stdout
        deadline = time.monotonic() + 3
        while not keeper.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(LeaseLost, match="lease lost: .* broken by oncall: urgent firmware fix"):
            keeper.check()
