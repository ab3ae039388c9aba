"""End every process of one probe run on this node and say what, if anything, is left.

Usage: reap.py RUN_DIR TAG [--remove]

Finds the run's processes by its recorded process group and by the HILT_PROBE_RUN=TAG environment mark
(torchrun workers live in sessions of their own), sends SIGTERM, then SIGKILL to survivors, and prints one
JSON line: {"signalled": [...], "remaining": [...]}. --remove deletes RUN_DIR afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time


def _members(pgid: int | None, tag: str) -> list[int]:
    mark = f"HILT_PROBE_RUN={tag}".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            if pgid is not None and os.getpgid(pid) == pgid:
                found.append(pid)
                continue
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if mark in fh.read().split(b"\0"):
                    found.append(pid)
        except (OSError, ProcessLookupError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main() -> int:
    run_dir, tag = sys.argv[1], sys.argv[2]
    pgid = None
    try:
        with open(os.path.join(run_dir, "pgid")) as fh:
            pgid = int(fh.read().strip())
    except (OSError, ValueError):
        pass
    signalled: list[int] = []
    for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
        pids = [p for p in _members(pgid, tag) if _alive(p)]
        if not pids:
            break
        if pgid is not None:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        signalled.extend(p for p in pids if p not in signalled)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)
    remaining = [p for p in _members(pgid, tag) if _alive(p)]
    if "--remove" in sys.argv[3:] and os.path.basename(run_dir).startswith("hilt-probe-"):
        shutil.rmtree(run_dir, ignore_errors=True)
    print(json.dumps({"pgid": pgid, "signalled": signalled, "remaining": remaining}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
