"""One holder's hold on a rig's nodes: health filter, lease, heartbeat, lease-lost file, node health, release.

A pytest session (hilt/session/rig_session.py) and a rollout (hilt/rollout/engine.py) hold nodes the same way,
so they do it through this one class: written twice, the two had drifted (one never closed its store, one
caught only ``LeaseError`` where the other caught ``HiltError``, only one told a boot result its node's health).
What differs stays with the caller: which sick nodes a session skips and a rollout refuses, the BMC health check
of ``unknown`` nodes, a rollout's dead controller's lease.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from hilt.errors import HiltError
from hilt.lease.keeper import LeaseKeeper
from hilt.lease.model import HealthRecord, HealthState, Holder, Lease, Waiting
from hilt.lease.store import LeaseStore
from hilt.lease.url import open_store

log = logging.getLogger(__name__)

SICK = (HealthState.BAD, HealthState.MAINTENANCE)
"""Health states that only a person ends (`hilt nodes set-health`): such a node is never leased for work."""


class BootOutcome(Protocol):
    """What a boot result tells node health (hilt.provision.boot.ProvisionResult is one)."""

    ok: bool
    error: str | None
    evidence: dict[str, Any]


class LeaseHold:
    """Nodes of rig ``rig`` held for run ``run`` (a session's run id, a rollout's id: health transitions name it).

    Keys in the store are ``rig/node``; callers speak node names. ``release`` is safe at any point, also after a
    failed ``acquire`` or none, and twice.
    """

    def __init__(self, store: LeaseStore, rig: str, run: str, *, bad_after: int = 3, lost_file: Path | None = None):
        self.store = store
        self.rig = rig
        self.run = run
        self.bad_after = bad_after
        self.lost_file = Path(lost_file) if lost_file is not None else None
        self.lease: Lease | None = None
        self.keeper: LeaseKeeper | None = None
        self._released = threading.Event()
        self._closed = False

    @classmethod
    def open(cls, url: str, rig: str, run: str, *, bad_after: int = 3, lost_file: Path | None = None) -> LeaseHold:
        """A hold on the store at ``url`` (sqlite://, etcd://: docs/leases.md); nothing is leased yet."""
        return cls(open_store(url), rig, run, bad_after=bad_after, lost_file=lost_file)

    def key(self, node: str) -> str:
        return f"{self.rig}/{node}"

    # ------------------------------------------------------------------ health before the lease

    def health(self, node: str) -> HealthRecord:
        return self.store.health(self.key(node))

    def sick(self, nodes: Iterable[str]) -> dict[str, HealthRecord]:
        """The nodes that are ``bad`` or in ``maintenance``, with their records."""
        records = {name: self.health(name) for name in nodes}
        return {name: record for name, record in records.items() if record.state in SICK}

    def record_failure(self, node: str, reason: str) -> HealthRecord:
        """One more infrastructure failure of ``node`` (``unknown``, then ``bad`` after ``bad_after``)."""
        return self.store.record_infra_failure(self.key(node), reason, self.run, bad_after=self.bad_after)

    # ------------------------------------------------------------------ the lease

    def acquire(self, nodes: Sequence[str], purpose: str, *, ttl_s: float, wait_s: float,
                on_wait: Callable[[Waiting], None] | None = None, cancel: threading.Event | None = None) -> Lease:
        """Lease all of ``nodes`` or none, then keep the lease alive (the heartbeat keeper) and watch it: when it
        is lost, ``lost_file`` gets the reason (every xdist worker and wave run checks that file). A wait for busy
        nodes ends at once, out of the queue, when ``cancel`` is set (LeaseWaitCancelled)."""
        self.lease = self.store.acquire([self.key(n) for n in nodes], Holder.current(purpose=purpose), ttl_s=ttl_s,
                                        wait_s=wait_s, on_wait=on_wait, cancel=cancel)
        if self.lost_file is not None:
            self.lost_file.unlink(missing_ok=True)  # left by an earlier holder of this directory (a resume)
        self.keeper = LeaseKeeper(self.store, self.lease).start()
        threading.Thread(target=self._watch, args=(self.keeper,), name="hilt-lease-watch", daemon=True).start()
        return self.lease

    def _watch(self, keeper: LeaseKeeper) -> None:
        while not self._released.wait(0.2):
            if keeper.lost:  # also a whole TTL without a renewal, which only reading ``lost`` notices
                if self.lost_file is not None:
                    self.lost_file.write_text(keeper.lost_reason or "lease lost")
                return

    @property
    def lost_reason(self) -> str | None:
        """Why the lease is gone, or None while it is held (or none was taken)."""
        keeper = self.keeper
        return (keeper.lost_reason or "lease lost") if keeper is not None and keeper.lost else None

    # ------------------------------------------------------------------ health after the boots

    def record_health(self, results: Mapping[str, BootOutcome]) -> None:
        """Boots count for node health as a run's do (docs/leases.md): a success clears, a failure counts; each
        result's ``evidence["health"]`` says the health its node has now. A store that cannot record it costs a
        warning, not the run."""
        for name, result in results.items():
            try:
                if result.ok:
                    record = self.store.record_success(self.key(name), self.run)
                else:
                    record = self.record_failure(name, result.error or "boot failed")
            except HiltError as exc:
                log.warning("node %s: health not recorded: %s", name, exc)
                continue
            result.evidence["health"] = record.state.value

    # ------------------------------------------------------------------ the end

    def release(self) -> None:
        """Stop the heartbeat, give the nodes back and close the store. A release that fails is a warning (the
        lease then ends with its TTL), never a reason to skip the rest."""
        self._released.set()
        keeper, self.keeper = self.keeper, None
        if keeper is not None:
            keeper.stop()
        lease, self.lease = self.lease, None
        if lease is not None:
            try:
                self.store.release(lease.id)
            except HiltError as exc:
                log.warning("lease %s not released: %s", lease.id, exc)
        if not self._closed:
            self._closed = True
            self.store.close()
