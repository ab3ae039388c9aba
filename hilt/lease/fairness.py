"""Who gets which nodes: one pure decision shared by every store.

The store reads a consistent snapshot (held nodes, node health, the waiter queue in arrival order) and asks
``decide`` whether a request can be granted now. Serving is first come, first served per node: a request may
not take a node that an earlier, still-waiting request also wants. So a waiter for 4 nodes is never overtaken
forever by waiters for 1 (they queue behind it for its nodes), while requests for disjoint nodes pass freely.
Safety (no node with two holders) is not decided here: each store enforces it atomically when it writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hilt.lease.model import HealthState


@dataclass(frozen=True)
class Request:
    """Either exact ``nodes`` (count is None), or any ``count`` of the candidate ``nodes``."""

    nodes: tuple[str, ...]
    count: int | None = None

    def wanted(self) -> frozenset[str]:
        """Every node this request might take: the nodes it blocks for later waiters."""
        return frozenset(self.nodes)


@dataclass(frozen=True)
class Decision:
    """Granted ``nodes``, or why not: held nodes, nodes claimed by earlier waiters, or a refusal."""

    nodes: tuple[str, ...] | None
    busy: tuple[str, ...] = ()
    queued_ahead: int = 0
    refused: str | None = None  # the request can never be served as asked (health, too few candidates)


def refusal(request: Request, health: Mapping[str, HealthState]) -> str | None:
    """Why ``request`` can never be granted while health stays as it is, or None."""
    if request.count is None:
        unusable = [f"{n} is {health[n].value}" for n in request.nodes
                    if n in health and not health[n].leasable]
        if unusable:
            return ("nodes in health bad or maintenance are never leased: " + "; ".join(unusable)
                    + " (a person sets them back with `hilt nodes set-health NODE good --why ...`)")
        return None
    usable = [n for n in request.nodes if n not in health or health[n].leasable]
    if len(usable) < request.count:
        bad = [f"{n} is {health[n].value}" for n in request.nodes if n in health and not health[n].leasable]
        detail = f" ({'; '.join(bad)})" if bad else ""
        return (f"wanted {request.count} of {len(request.nodes)} candidate node(s) but only {len(usable)} "
                f"can be leased{detail}")
    return None


def decide(request: Request, held: Mapping[str, str], health: Mapping[str, HealthState],
           earlier: Sequence[Request]) -> Decision:
    """Grant now, or say what blocks. ``held`` maps node -> lease id; ``earlier`` are the live waiters
    queued before this request, oldest first; nodes absent from ``health`` count as unknown (leasable)."""
    why_not = refusal(request, health)
    if why_not:
        return Decision(nodes=None, refused=why_not)
    claimed: set[str] = set()
    for other in earlier:
        claimed |= other.wanted()
    ahead = sum(1 for other in earlier if other.wanted() & request.wanted())
    if request.count is None:
        busy = tuple(n for n in request.nodes if n in held)
        if busy or request.wanted() & claimed:
            return Decision(nodes=None, busy=busy, queued_ahead=ahead)
        return Decision(nodes=request.nodes)
    free = [n for n in request.nodes
            if n not in held and n not in claimed and (n not in health or health[n].leasable)]
    if len(free) < request.count:
        busy = tuple(n for n in request.nodes if n in held)
        return Decision(nodes=None, busy=busy, queued_ahead=ahead)
    # Prefer nodes known good: an `unknown` node costs a health check before use.
    free.sort(key=lambda n: 0 if health.get(n) == HealthState.GOOD else 1)
    return Decision(nodes=tuple(free[: request.count]))
