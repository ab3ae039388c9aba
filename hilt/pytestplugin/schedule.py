"""Nodes in parallel, never one node twice: per-node tests of different nodes run at once under ``-n``, tests of
one node take turns, lease-wide tests run alone.

Two parts. The guarantee is a lock, held by an autouse fixture for the whole test (setup to teardown): a test
on a node holds that node's lock exclusively and the lease lock shared; a test on every node of the lease
holds the lease lock exclusively. The locks are ``flock`` files in the session's work directory, so they hold
across xdist workers whatever the ``--dist`` mode, and a probe can never share its node with another test.
The speed is a scheduler (xdist's public ``pytest_xdist_make_scheduler`` hook, used for its default
``--dist load``): one scope per node, so each worker runs one node's tests in turn and the nodes run side by
side instead of waiting for each other's locks.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from hilt.pytestplugin.state import session_work_dir

LEASE_SCOPE = "hilt:lease-wide and other tests"


class NodeLocks:
    """The session's node locks: one file per node and one for the lease, in the session's work directory."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    @contextmanager
    def node(self, name: str) -> Iterator[None]:
        """Held while a test uses node ``name``: alone on that node, beside other nodes' tests."""
        with self._flock("lease", fcntl.LOCK_SH), self._flock(f"node-{_safe(name)}", fcntl.LOCK_EX):
            yield

    @contextmanager
    def lease(self) -> Iterator[None]:
        """Held while a test uses every node of the lease: no other rig test runs meanwhile."""
        with self._flock("lease", fcntl.LOCK_EX):
            yield

    @contextmanager
    def _flock(self, name: str, mode: int) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing releases the lock, also when the test raised


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def node_of_nodeid(nodeid: str, node_names: Sequence[str]) -> str | None:
    """The rig node a test id is parametrized with, for scheduling only (results get the node from the fixture).

    pytest joins parameter ids with ``-``, and node names may contain ``-`` (``gpu-01``), so the known names are
    tried longest first as whole ``-``-separated parts of the id.
    """
    match = re.search(r"\[(.*)\]$", nodeid)
    if match is None:
        return None
    params = match.group(1)
    for name in sorted(node_names, key=len, reverse=True):
        if params == name or params.startswith(f"{name}-") or params.endswith(f"-{name}") or f"-{name}-" in params:
            return name
    return None


@pytest.fixture(autouse=True)
def _node_turn(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Iterator[None]:
    """Hold the node's (or the lease's) lock for the whole test, so a test never shares its node."""
    work_dir = session_work_dir(pytestconfig)
    names = request.fixturenames
    if work_dir is None or not ("node" in names or "lease_nodes" in names):
        yield
        return
    locks = NodeLocks(work_dir / "locks")
    callspec = getattr(request.node, "callspec", None)
    node = callspec.params.get("node") if callspec is not None else None
    if "lease_nodes" in names or node is None:
        with locks.lease():
            yield
    else:
        with locks.node(str(node)):
            yield


def make_scheduler(config: pytest.Config, log, node_names: Sequence[str]):  # noqa: ANN001, ANN201 - xdist types
    """xdist's load scheduling with one scope per node (and one for every test on no single node)."""
    from xdist.scheduler import LoadScopeScheduling  # start-up cost: only a run under -n schedules

    class NodeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return node_of_nodeid(nodeid, node_names) or LEASE_SCOPE

    return NodeScheduling(config, log)
