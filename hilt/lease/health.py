"""Node health transitions, after LAVA's device health: pure functions that both stores apply atomically.

- An infrastructure failure (BMC error, boot timeout, SSH never up) moves a node to ``unknown`` so that the next
  session checks it before use; ``bad_after`` consecutive failures move it to ``bad``.
- A success moves ``unknown`` to ``good`` and clears the failure count.
- ``bad`` and ``maintenance`` are left only by a person (``set_health``): automation never heals a node that a
  person or repeated failures took out of service.
"""

from __future__ import annotations

from hilt.errors import ConfigError
from hilt.lease.model import HealthRecord, HealthState, HealthTransition


def after_failure(current: HealthRecord, reason: str, session: str | None, now: float,
                  bad_after: int = 3) -> tuple[HealthRecord, HealthTransition]:
    """The record after one more infrastructure failure; every failure is recorded, even without a change."""
    if bad_after < 1:
        raise ConfigError(f"bad_after must be at least 1, got {bad_after}")
    failures = current.consecutive_failures + 1
    if current.state in (HealthState.BAD, HealthState.MAINTENANCE):
        state = current.state
    elif failures >= bad_after:
        state = HealthState.BAD
    else:
        state = HealthState.UNKNOWN
    text = f"infrastructure failure {failures}/{bad_after}: {reason}"
    since = current.since if state == current.state and current.since is not None else now
    record = HealthRecord(node=current.node, state=state, since=since,
                          reason=current.reason if state == HealthState.MAINTENANCE else text,
                          consecutive_failures=failures)
    return record, HealthTransition(time=now, node=current.node, from_state=current.state, to_state=state,
                                    reason=text, session=session)


def after_success(current: HealthRecord, session: str | None,
                  now: float) -> tuple[HealthRecord, HealthTransition | None]:
    """The record after a node worked; a transition only when the state changes."""
    if current.state in (HealthState.BAD, HealthState.MAINTENANCE):
        return current, None
    if current.state == HealthState.GOOD and current.consecutive_failures == 0:
        return current, None
    record = HealthRecord(node=current.node, state=HealthState.GOOD,
                          since=now if current.state != HealthState.GOOD else current.since,
                          reason="worked in a session", consecutive_failures=0)
    if current.state == HealthState.GOOD:
        return record, None
    return record, HealthTransition(time=now, node=current.node, from_state=current.state,
                                    to_state=HealthState.GOOD, reason="worked in a session", session=session)


def set_by_person(current: HealthRecord, state: HealthState, why: str, by: str,
                  now: float) -> tuple[HealthRecord, HealthTransition]:
    """A person's decision; it always needs a reason, and it clears the failure count."""
    if not why or not why.strip():
        raise ConfigError("setting a node's health needs a reason (--why \"...\")")
    record = HealthRecord(node=current.node, state=state, since=now, reason=why.strip(),
                          consecutive_failures=0)
    return record, HealthTransition(time=now, node=current.node, from_state=current.state, to_state=state,
                                    reason=why.strip(), session=None, by=by)
