"""The values a lease store hands out: holders, leases, node health.

They are frozen dataclasses with plain ``to_dict``/``from_dict`` so that both stores (sqlite rows, etcd JSON
values) serialise them the same way, and so that a person reading the store by hand sees readable JSON.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hilt.errors import ConfigError

# (environment variable holding the job id, CI system name, variable holding a link to the job)
_CI_JOB_VARS: tuple[tuple[str, str, str | None], ...] = (
    ("GITHUB_RUN_ID", "github", None),
    ("CI_JOB_ID", "gitlab", "CI_JOB_URL"),
    ("BUILD_TAG", "jenkins", "BUILD_URL"),
    ("BUILDKITE_JOB_ID", "buildkite", "BUILDKITE_BUILD_URL"),
    ("CIRCLE_WORKFLOW_JOB_ID", "circleci", "CIRCLE_BUILD_URL"),
    ("BUILD_BUILDID", "azure", None),
    ("TRAVIS_JOB_ID", "travis", "TRAVIS_JOB_WEB_URL"),
)


def _ci_job(env: dict[str, str]) -> tuple[str | None, str | None]:
    """The CI job this process runs in, as ``system:id`` plus a link when the CI exports one."""
    for var, system, url_var in _CI_JOB_VARS:
        job = env.get(var)
        if job:
            url = env.get(url_var) if url_var else None
            if system == "github" and env.get("GITHUB_REPOSITORY"):
                server = env.get("GITHUB_SERVER_URL", "https://github.com")
                url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{job}"
            return f"{system}:{job}", url
    return None, None


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: enough for a person to find the holder and ask them (or their CI job) to stop."""

    user: str
    host: str
    pid: int
    ci_job: str | None = None
    ci_url: str | None = None
    purpose: str = ""

    @classmethod
    def current(cls, purpose: str = "", env: dict[str, str] | None = None) -> Holder:
        """This process, with the CI job id taken from the environment when one is set."""
        env = dict(os.environ) if env is None else env
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry in some containers
            user = env.get("USER") or f"uid{os.getuid()}"
        ci_job, ci_url = _ci_job(env)
        return cls(user=user, host=socket.gethostname(), pid=os.getpid(), ci_job=ci_job, ci_url=ci_url,
                   purpose=purpose)

    def describe(self) -> str:
        """``alice@laptop pid 4242 (CI gitlab:123)``: one line naming the holder."""
        ci = f" (CI {self.ci_job})" if self.ci_job else ""
        return f"{self.user}@{self.host} pid {self.pid}{ci}"

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "host": self.host, "pid": self.pid, "ci_job": self.ci_job,
                "ci_url": self.ci_url, "purpose": self.purpose}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Holder:
        return cls(user=str(data["user"]), host=str(data["host"]), pid=int(data["pid"]),
                   ci_job=data.get("ci_job"), ci_url=data.get("ci_url"), purpose=str(data.get("purpose", "")))


@dataclass(frozen=True)
class Lease:
    """A time-limited claim on a set of nodes, taken all or nothing and kept alive by renewals."""

    id: str
    nodes: tuple[str, ...]
    holder: Holder
    acquired_at: float
    expires_at: float
    ttl_s: float = 60.0

    @property
    def purpose(self) -> str:
        return self.holder.purpose

    def describe(self) -> str:
        """One line for a waiting message or an error: who, what for, since and until when."""
        purpose = f", purpose {self.purpose!r}" if self.purpose else ""
        return (f"{self.holder.describe()} (lease {self.id}{purpose}, since {_clock(self.acquired_at)}, "
                f"expires {_clock(self.expires_at)})")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "nodes": list(self.nodes), "holder": self.holder.to_dict(),
                "acquired_at": self.acquired_at, "expires_at": self.expires_at, "ttl_s": self.ttl_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lease:
        return cls(id=str(data["id"]), nodes=tuple(data["nodes"]), holder=Holder.from_dict(data["holder"]),
                   acquired_at=float(data["acquired_at"]), expires_at=float(data["expires_at"]),
                   ttl_s=float(data.get("ttl_s", 60.0)))


class HealthState(StrEnum):
    """A node's health, after LAVA's device health: only ``good`` and ``unknown`` nodes are leased."""

    GOOD = "good"
    UNKNOWN = "unknown"  # needs a quick health check before use (never checked, or an infrastructure failure)
    BAD = "bad"  # too many consecutive infrastructure failures; a person must set it back
    MAINTENANCE = "maintenance"  # taken out of service by a person

    @property
    def leasable(self) -> bool:
        return self in (HealthState.GOOD, HealthState.UNKNOWN)

    @classmethod
    def parse(cls, text: str) -> HealthState:
        try:
            return cls(text.strip().lower())
        except ValueError:
            valid = ", ".join(s.value for s in cls)
            raise ConfigError(f"health state {text!r} is not valid: use one of {valid}") from None


@dataclass(frozen=True)
class HealthRecord:
    """A node's current health and why it is so."""

    node: str
    state: HealthState
    since: float | None
    reason: str
    consecutive_failures: int = 0

    @classmethod
    def initial(cls, node: str) -> HealthRecord:
        return cls(node=node, state=HealthState.UNKNOWN, since=None, reason="never checked")

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "state": self.state.value, "since": self.since, "reason": self.reason,
                "consecutive_failures": self.consecutive_failures}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthRecord:
        return cls(node=str(data["node"]), state=HealthState(data["state"]), since=data.get("since"),
                   reason=str(data.get("reason", "")),
                   consecutive_failures=int(data.get("consecutive_failures", 0)))


@dataclass(frozen=True)
class HealthTransition:
    """One recorded change (or infrastructure failure) of a node's health."""

    time: float
    node: str
    from_state: HealthState
    to_state: HealthState
    reason: str
    session: str | None = None
    by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "node": self.node, "from": self.from_state.value, "to": self.to_state.value,
                "reason": self.reason, "session": self.session, "by": self.by}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthTransition:
        return cls(time=float(data["time"]), node=str(data["node"]), from_state=HealthState(data["from"]),
                   to_state=HealthState(data["to"]), reason=str(data.get("reason", "")),
                   session=data.get("session"), by=data.get("by"))


@dataclass(frozen=True)
class LeaseEvent:
    """A recorded act on a lease by someone other than its holder (today: a break)."""

    time: float
    kind: str
    lease_id: str
    nodes: tuple[str, ...]
    holder: Holder
    by: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "kind": self.kind, "lease_id": self.lease_id, "nodes": list(self.nodes),
                "holder": self.holder.to_dict(), "by": self.by, "why": self.why}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LeaseEvent:
        return cls(time=float(data["time"]), kind=str(data["kind"]), lease_id=str(data["lease_id"]),
                   nodes=tuple(data["nodes"]), holder=Holder.from_dict(data["holder"]), by=str(data["by"]),
                   why=str(data["why"]))


@dataclass(frozen=True)
class Waiting:
    """What a waiter is waiting for: handed to ``on_wait`` so the wait shows who holds what."""

    wanted: tuple[str, ...]
    held_by: dict[str, Lease] = field(default_factory=dict)
    queued_ahead: int = 0
    waited_s: float = 0.0
    count: int | None = None

    def describe(self) -> str:
        return f"waiting {self.waited_s:.0f} s for {self.want()}: {self.blockers()}"

    def want(self) -> str:
        """The nodes asked for: ``a, b`` or ``2 of a, b, c``."""
        return f"{self.count} of {', '.join(self.wanted)}" if self.count is not None else ", ".join(self.wanted)

    def blockers(self) -> str:
        """Who holds the wanted nodes and how many earlier waiters are first in line."""
        parts = [f"{node} held by {lease.describe()}" for node, lease in sorted(self.held_by.items())]
        if self.queued_ahead:
            parts.append(f"{self.queued_ahead} earlier waiter(s) first in line")
        return "; ".join(parts) if parts else "nodes busy"


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
