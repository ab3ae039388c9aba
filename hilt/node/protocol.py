"""The node protocol: what suites, probes and fabric readers need from a node, in one place.

``hilt.node.ssh.Node`` (SSH) implements it; the probes' and fabric readers' functions ask for it, never for
``Node``, so their tests can hand them a local stand-in speaking the same calls, and a second transport
(a serial console, a BMC shell) is one more class, not a branch. fabric and probes sit a layer below node
(docs/architecture.md), so they name this protocol under ``TYPE_CHECKING`` only: a type, never an import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol


class CommandResultLike(Protocol):
    argv: Sequence[str]
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float


class NodeLike(Protocol):
    """A node of the lease: its name, its Python, the address other nodes reach it at, and commands on it."""

    name: str
    python: str
    address: str

    def run(self, argv: Sequence[str], timeout: float = 60, check: bool = True,
            on_output: Any = None) -> CommandResultLike: ...

    def run_script(self, script: str, timeout: float = 60, check: bool = True) -> CommandResultLike: ...

    def read_files(self, paths: Sequence[str], timeout: float = 60) -> dict[str, str | None]: ...

    def upload(self, local_path: str | Path, remote_path: str) -> None: ...
