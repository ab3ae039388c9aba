"""The lease store interface, and the waiting loop that both stores share.

A store implements a few atomic steps (try to grant a request, join/refresh/leave the waiter queue, renew,
release, break, health updates); ``acquire`` and ``acquire_matching`` are written once here on top of them, so
both stores wait, queue and report in exactly the same way.

A wait can be called off from another thread (``cancel``, an Event: a run stopped by a signal while its nodes
were busy). The waiter wakes at once, leaves the queue before it returns, and raises LeaseWaitCancelled: a
waiter that only died (its thread or process gone) would block the queue until its ticket expired, and one that
went on waiting could be granted nodes after its run had ended.
"""

from __future__ import annotations

import math
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hilt.errors import ConfigError, LeaseError, LeaseWaitCancelled
from hilt.lease.fairness import Decision, Request
from hilt.lease.model import (
    HealthRecord,
    HealthState,
    HealthTransition,
    Holder,
    Lease,
    LeaseEvent,
    Waiting,
)

OnWait = Callable[[Waiting], None]

#: A waiter's place in the queue lives this long without a refresh, so a waiter killed with SIGKILL stops
#: blocking the queue after a few seconds.
TICKET_TTL_S = 3.0


@dataclass(frozen=True)
class Blocked:
    """A request that cannot be granted now: the decision plus the leases that hold the busy nodes."""

    decision: Decision
    held_by: dict[str, Lease] = field(default_factory=dict)


class LeaseStore(ABC):
    """Leases on sets of nodes, the waiter queue and node health, kept in one store."""

    #: seconds between two looks at the store while waiting (a store may tune it)
    poll_s: float = 0.05
    #: a short text naming the store for messages (never with a secret)
    where: str = ""

    # -- leasing --------------------------------------------------------------------------------------------
    def acquire(self, nodes: Sequence[str], holder: Holder, ttl_s: float = 60.0, wait_s: float = 0.0,
                on_wait: OnWait | None = None, cancel: threading.Event | None = None) -> Lease:
        """Lease all of ``nodes`` or none; wait up to ``wait_s`` in a first come, first served queue, or until
        ``cancel`` is set (LeaseWaitCancelled)."""
        wanted = tuple(nodes)
        if not wanted:
            raise ConfigError("a lease needs at least one node")
        if len(set(wanted)) != len(wanted):
            raise ConfigError(f"node named twice in one lease request: {', '.join(wanted)}")
        return self._acquire(Request(nodes=wanted), holder, ttl_s, wait_s, on_wait, cancel)

    def acquire_matching(self, candidates: Sequence[str], count: int, holder: Holder, ttl_s: float = 60.0,
                         wait_s: float = 0.0, on_wait: OnWait | None = None,
                         cancel: threading.Event | None = None) -> Lease:
        """Lease any ``count`` free, leasable nodes among ``candidates`` (known-good nodes first)."""
        wanted = tuple(dict.fromkeys(candidates))
        if count < 1:
            raise ConfigError(f"a lease needs at least one node, asked for {count}")
        if len(wanted) < count:
            raise LeaseError(f"wanted {count} node(s) but only {len(wanted)} candidate(s) match: "
                             f"{', '.join(wanted) or 'none'}")
        return self._acquire(Request(nodes=wanted, count=count), holder, ttl_s, wait_s, on_wait, cancel)

    def _acquire(self, request: Request, holder: Holder, ttl_s: float, wait_s: float,
                 on_wait: OnWait | None, cancel: threading.Event | None) -> Lease:
        if not (math.isfinite(ttl_s) and ttl_s > 0):  # nan/inf would make a lease that never expires
            raise ConfigError(f"lease TTL must be a positive number of seconds, got {ttl_s} s")
        if math.isnan(wait_s) or wait_s < 0:
            raise ConfigError(f"lease wait must be zero or positive (inf waits for ever), got {wait_s} s")
        start = time.monotonic()
        deadline = start + wait_s
        ticket: str | None = None
        last_refresh = start
        shown: tuple[object, ...] | None = None
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    raise LeaseWaitCancelled(
                        f"stopped waiting for {_want(request)} after {time.monotonic() - start:.0f} s: called off "
                        "(the run was stopped); left the queue, nothing leased")
                outcome = self._attempt(request, holder, ttl_s, ticket)
                if isinstance(outcome, Lease):
                    return outcome
                decision = outcome.decision
                if decision.refused:
                    raise LeaseError(f"cannot lease {_want(request)}: {decision.refused}")
                now = time.monotonic()
                if now >= deadline:
                    raise LeaseError(self._busy_message(request, outcome, wait_s))
                if ticket is None:
                    ticket = self._enqueue(request, holder)
                    last_refresh = now
                    continue  # look again at once: we now know our place in the queue
                if now - last_refresh >= TICKET_TTL_S / 3:
                    self._refresh_ticket(ticket)
                    last_refresh = now
                picture = (tuple(sorted((n, lease.id) for n, lease in outcome.held_by.items())),
                           decision.queued_ahead)
                if on_wait is not None and picture != shown:
                    shown = picture
                    on_wait(Waiting(wanted=request.nodes, held_by=dict(outcome.held_by),
                                    queued_ahead=decision.queued_ahead, waited_s=now - start,
                                    count=request.count))
                pause = min(self.poll_s * random.uniform(0.7, 1.3), max(0.0, deadline - now))
                if cancel is not None:
                    cancel.wait(pause)  # wakes at once when the wait is called off
                else:
                    time.sleep(pause)
        finally:
            if ticket is not None:
                try:
                    self._dequeue(ticket)
                except LeaseError:
                    pass  # the ticket expires on its own within TICKET_TTL_S

    def _busy_message(self, request: Request, blocked: Blocked, wait_s: float) -> str:
        parts = [f"{node} held by {lease.describe()}" for node, lease in sorted(blocked.held_by.items())]
        if blocked.decision.queued_ahead:
            parts.append(f"{blocked.decision.queued_ahead} earlier waiter(s) queued for the same nodes")
        if request.count is not None and not parts:
            parts.append("not enough free nodes")
        waited = f"within {wait_s:g} s" if wait_s else "now (use --lease-wait SECONDS to queue)"
        return f"could not lease {_want(request)} {waited}: " + "; ".join(parts)

    @abstractmethod
    def _attempt(self, request: Request, holder: Holder, ttl_s: float, ticket: str | None) -> Lease | Blocked:
        """Atomically grant the request if the fairness rule allows it now, else say what blocks it."""

    @abstractmethod
    def _enqueue(self, request: Request, holder: Holder) -> str:
        """Join the waiter queue; returns the ticket."""

    @abstractmethod
    def _refresh_ticket(self, ticket: str) -> None:
        """Keep our place in the queue alive."""

    @abstractmethod
    def _dequeue(self, ticket: str) -> None:
        """Leave the queue (granted, gave up or failed)."""

    @abstractmethod
    def renew(self, lease_id: str) -> Lease:
        """Extend the lease by its TTL; raises LeaseLost if it expired, was released or was broken."""

    @abstractmethod
    def release(self, lease_id: str, by: str | None = None, why: str | None = None) -> bool:
        """Give the nodes back; False when there was no such lease (already released or expired).

        ``by`` and ``why`` are given when someone other than the holder releases it: the release is then
        recorded like a break, and the holder's keeper reports who released it and why.
        """

    @abstractmethod
    def get(self, lease_id: str) -> Lease | None:
        """The lease if it is held now (for xdist workers that join their session's lease)."""

    def is_held(self, lease_id: str) -> bool:
        return self.get(lease_id) is not None

    @abstractmethod
    def list_leases(self) -> list[Lease]:
        """Every lease held now, oldest first."""

    @abstractmethod
    def break_node(self, node: str, why: str, by: str) -> Lease:
        """End the lease that holds ``node`` (all its nodes) on a person's word; recorded with why and by."""

    @abstractmethod
    def lease_events(self, limit: int = 100) -> list[LeaseEvent]:
        """Recorded breaks, newest first."""

    # -- node health ----------------------------------------------------------------------------------------
    @abstractmethod
    def health(self, node: str) -> HealthRecord:
        """The node's health (``unknown``, "never checked", for a node the store has not seen)."""

    @abstractmethod
    def all_health(self) -> list[HealthRecord]:
        """Every node with a recorded health, by name."""

    @abstractmethod
    def set_health(self, node: str, state: HealthState | str, why: str, by: str) -> HealthRecord:
        """A person's decision (the only way out of ``bad`` and ``maintenance``)."""

    @abstractmethod
    def record_infra_failure(self, node: str, reason: str, session: str | None,
                             bad_after: int = 3) -> HealthRecord:
        """One more infrastructure failure: ``unknown``, then ``bad`` after ``bad_after`` in a row."""

    @abstractmethod
    def record_success(self, node: str, session: str | None) -> HealthRecord:
        """The node worked: ``unknown`` becomes ``good`` and the failure count is cleared."""

    @abstractmethod
    def health_history(self, node: str | None = None, limit: int = 100) -> list[HealthTransition]:
        """Recorded transitions, newest first."""

    def close(self) -> None:  # noqa: B027 - optional hook: not every store holds connections
        """Release connections (the store stays usable from other processes)."""

    def __enter__(self) -> LeaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _want(request: Request) -> str:
    if request.count is None:
        return ", ".join(request.nodes)
    return f"{request.count} of {', '.join(request.nodes)}"


def check_why(why: str, what: str) -> str:
    """Breaking a lease or changing health without a reason leaves the next person guessing."""
    if not why or not why.strip():
        raise ConfigError(f"{what} needs a reason (--why \"...\")")
    return why.strip()
