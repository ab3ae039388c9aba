"""pid_alive: the one answer to "is that process still there?" (a rollout's controller, a sim's daemon)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from hilt.util.processes import pid_alive


def test_a_running_process_is_alive_and_a_reaped_one_is_not():
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    assert not pid_alive(None) and not pid_alive(0)


def test_a_zombie_is_dead():
    """An exited child that its parent has not reaped yet still answers kill(pid, 0): it is dead all the same
    (a killed rollout controller whose parent never reaped it must not block `hilt rollout resume`)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while _state(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _state(child.pid) == "Z", "the child did not become a zombie"
        os.kill(child.pid, 0)  # the kernel still knows it ...
        assert not pid_alive(child.pid)  # ... but it is dead
    finally:
        child.wait()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]
