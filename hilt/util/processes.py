"""Is a process still there? One answer for the sim's cleanup and the rollout's controller check.

A zombie (exited, not yet reaped by its parent) is dead: it holds no lease, drives no rollout and serves no
sim, and ``os.kill(pid, 0)`` alone would call it alive until its parent reaps it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` names a live process (not a zombie); None and 0 are not processes."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    with contextlib.suppress(OSError, IndexError):  # /proc/PID/stat: "pid (comm) STATE ...", comm may hold ')'
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True
