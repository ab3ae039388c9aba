"""A Node (docs/architecture.md) on this machine: same methods, subprocess instead of SSH.

Used to run the real probe scripts with real torch.distributed gloo in tests, so it is not a mock: only the
transport differs. Like SSH it passes argv verbatim (no shell) and reports a missing program as exit 127.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hilt.errors import NodeError


@dataclass
class CommandResult:
    argv: Sequence[str]
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float


class LocalNode:
    def __init__(self, name: str, address: str = "127.0.0.1", python: str = sys.executable):
        self.name = name
        self.address = address
        self.python = python

    def upload(self, local_path: str | Path, remote_path: str) -> None:
        shutil.copyfile(local_path, remote_path)

    def run(self, argv: Sequence[str], timeout: float = 60, check: bool = True,
            on_output: Callable[[str], None] | None = None, stdin: str | None = None) -> CommandResult:
        started = time.monotonic()
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=stdin)
            result = CommandResult(list(argv), proc.returncode, proc.stdout, proc.stderr,
                                   time.monotonic() - started)
        except FileNotFoundError as exc:
            result = CommandResult(list(argv), 127, "", str(exc), time.monotonic() - started)
        except subprocess.TimeoutExpired as exc:
            raise NodeError(f"node {self.name}: {argv[0]} did not finish in {timeout} s") from exc
        if on_output is not None and result.stdout:
            for line in result.stdout.splitlines():
                on_output(line)
        if check and result.exit_code != 0:
            raise NodeError(f"node {self.name}: {argv[0]} exited {result.exit_code}: {result.stderr[-500:]}")
        return result

    def run_script(self, script: str, timeout: float = 60, check: bool = True) -> CommandResult:
        """A fixed script of ours, on ``bash -s``'s stdin as hilt.node.ssh.Node runs it (the fabric readers')."""
        return self.run(["bash", "-s"], timeout=timeout, check=check, stdin=script)
