"""`hilt sim up --image` stopped by a signal while it waits for nodes another holder has (`--lease-wait`): no rack
is started yet, so none is needed here. The same signal during the boot is tests/e2e/test_first_day.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hilt.errors import LeaseError
from hilt.exitcodes import ExitCode
from hilt.lease import Holder, open_store
from tests.support.sessions import ROOT

OTHER = Holder(user="alice", host="ci-3", pid=4242, ci_job="gitlab:77", purpose="hilt run nightly on rig sim")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_while_sim_up_waits_for_the_lease_ends_it_out_of_the_queue(tmp_path: Path, signum: int):
    """A CI job's timeout (SIGTERM) or Ctrl-C while `sim up --image good --lease-wait 600` is queued behind a run
    on the sim's nodes: it ends within seconds, exit 6, one error line saying nothing was leased or started, and
    leaves the queue (the next request is granted at once). Before: SIGTERM killed it in the queue (its ticket
    blocked the next request until it expired) and Ctrl-C ended it with exit 2 and no word."""
    url = f"sqlite://{tmp_path}/leases.sqlite"
    store = open_store(url)
    held = store.acquire(["sim/node2"], OTHER, ttl_s=600)
    log = tmp_path / "sim-up.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hilt.cli", "sim", "up", "--image", "good", "--nodes", "2",
                                 "--lease-store", url, "--lease-wait", "600"], cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={**{k: v for k, v in os.environ.items() if not k.startswith("HILT_")},
                                     "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 60
        while "waiting for nodes" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "sim sim: waiting for nodes: " in log.read_text(), log.read_text()
        time.sleep(0.5)  # in the wait, its place in the queue kept
        sent = time.monotonic()
        os.killpg(proc.pid, signum)
        code = proc.wait(timeout=60)
        took = time.monotonic() - sent
        assert [lease.id for lease in store.list_leases()] == [held.id]  # nothing of sim up's
        store.release(held.id)
        try:  # out of the queue: the next request for the nodes is queued behind no one
            later = store.acquire(["sim/node1", "sim/node2"], Holder.current(purpose="next"), ttl_s=30)
        except LeaseError as exc:
            raise AssertionError(f"sim up is still in the wait queue: {exc}") from None
        store.release(later.id)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        store.close()
    output = log.read_text()
    name = signal.Signals(signum).name
    assert code == ExitCode.INCONCLUSIVE, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: sim sim: stopped by {name} while waiting for the lease on rig sim's nodes: good not "
                      "verified, nothing leased, the sim not started"], output[-3000:]
    assert "Traceback" not in output and "Aborted" not in output, output[-3000:]
    assert took < 20, f"sim up took {took:.1f} s to end after {name}"
