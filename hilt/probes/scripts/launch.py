"""Start a probe command in its own session and record its process group, so a killer can end it all.

Usage: launch.py RUN_DIR TAG -- ARGV...

The child calls setsid() and writes its pid (= its pgid) to RUN_DIR/pgid, and every process below it
carries HILT_PROBE_RUN=TAG in its environment: torchrun puts each worker in a session of its own, so a
process-group kill alone would leave workers behind; the tag finds them. The parent stays in the SSH
session, relays the exit status, and kills the group when it is itself told to stop (or the SSH channel
drops and it gets SIGHUP).
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.stderr.write("usage: launch.py RUN_DIR TAG -- ARGV...\n")
        return 2
    run_dir, tag, argv = sys.argv[1], sys.argv[2], sys.argv[4:]
    child = os.fork()
    if child == 0:
        os.setsid()
        with open(os.path.join(run_dir, "pgid"), "w") as fh:
            fh.write(f"{os.getpid()}\n")
        os.environ["HILT_PROBE_RUN"] = tag
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            sys.stderr.write(f"launch.py: cannot run {argv[0]}: {exc}\n")
            os._exit(127)

    def stop(signum: int, _frame: object) -> None:
        try:
            os.killpg(child, signal.SIGTERM)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status


if __name__ == "__main__":
    code = main()
    sys.exit(code if code >= 0 else 128 - code)
