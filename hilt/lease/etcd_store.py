"""The shared lease store: etcd v3 through its HTTP gateway (etcd3gw), for several hosts.

A hilt lease is one etcd lease with the hilt TTL: its record and one key per node are attached to it, so when
the holder dies (kill -9, a cancelled CI job) etcd deletes them all when the TTL runs out, with no clock of ours
involved. Granting is one compare-and-swap transaction: "every node key has create_revision 0 (nobody holds it)
and no node's health changed since I looked" -> put them all. If it fails, the etcd lease we granted for it is
revoked at once, so failed tries leak nothing. (etcd3gw's ``Lock`` helper is not used: it enters its block even
when another holder has the lock and leaks a lease per failed try.) Waiters queue as keys under ``queue/``,
each on its own short etcd lease, ordered by create revision: etcd's own total order of arrival.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception

from hilt.errors import LeaseError, LeaseLost
from hilt.lease import health as transitions
from hilt.lease.fairness import Request, decide
from hilt.lease.model import (
    HealthRecord,
    HealthState,
    HealthTransition,
    Holder,
    Lease,
    LeaseEvent,
)
from hilt.lease.store import TICKET_TTL_S, Blocked, LeaseStore, check_why

_ASCEND, _DESCEND = 1, 2
_BY_KEY, _BY_CREATE = 0, 2
_CAS_TRIES = 20


class _AuthClient(Etcd3Client):
    """etcd3gw client that logs in with user/password and logs in again when the token expires."""

    def __init__(self, *args: Any, user: str | None = None, password: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._user, self._password = user, password
        self._token: str | None = None

    def _login(self) -> None:
        self.session.headers.pop("Authorization", None)
        result = super().post(self.get_url("/auth/authenticate"),
                              json={"name": self._user, "password": self._password})
        self._token = result["token"]
        self.session.headers["Authorization"] = self._token

    def post(self, url: str, *args: Any, json: Any = None, **kwargs: Any) -> Any:
        if self._user is None:
            return super().post(url, *args, json=json, **kwargs)
        if self._token is None:
            self._login()
        try:
            return super().post(url, *args, json=json, **kwargs)
        except Etcd3Exception as exc:
            if "token" not in str(exc.detail_text or "").lower():
                raise
            self._login()
            return super().post(url, *args, json=json, **kwargs)


@dataclass
class _Snapshot:
    held: dict[str, str]  # node -> lease id
    leases: dict[str, Lease]
    health: dict[str, HealthRecord]
    health_rev: dict[str, int]
    queue: list[tuple[str, int, Request]]  # (ticket, create revision, request), oldest first


class EtcdLeaseStore(LeaseStore):
    """Leases and node health under one key prefix in an etcd v3 cluster."""

    poll_s = 0.1

    def __init__(self, host: str, port: int = 2379, tls: bool = False, ca: str | None = None,
                 cert: str | None = None, key: str | None = None, user: str | None = None,
                 password: str | None = None, prefix: str = "/hilt/", timeout: float = 10.0):
        scheme = "https" if tls else "http"
        self.where = f"etcd at {scheme}://{host}:{port}{prefix}"
        self.prefix = prefix
        self._client = _AuthClient(host=host, port=port, protocol=scheme, ca_cert=ca, cert_cert=cert,
                                   cert_key=key, timeout=timeout, user=user, password=password)
        if tls and ca is None:
            self._client.session.verify = True

    # -- plumbing -------------------------------------------------------------------------------------------
    def _k(self, *parts: str) -> str:
        return self.prefix + "".join(parts)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One gateway call; every transport or server error becomes a LeaseError naming the store."""
        try:
            return self._client.post(self._client.get_url(path), json=body)
        except Etcd3Exception as exc:
            detail = exc.detail_text or str(exc) or type(exc).__name__
            raise LeaseError(f"{self.where}: {path} failed: {detail}") from None
        except requests.RequestException as exc:
            raise LeaseError(f"{self.where}: {path} failed: {exc}") from None

    def _txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
             failure: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return self._post("/kv/txn", {"compare": compare, "success": success, "failure": failure or []})

    def _range_op(self, prefix: str, sort_target: int = _BY_KEY, order: int = _ASCEND,
                  limit: int = 0) -> dict[str, Any]:
        op: dict[str, Any] = {"key": _encode(prefix), "range_end": _prefix_end(prefix),
                              "sort_order": order, "sort_target": sort_target}
        if limit:
            op["limit"] = limit
        return {"request_range": op}

    def _range(self, prefix: str, sort_target: int = _BY_KEY, order: int = _ASCEND,
               limit: int = 0) -> list[dict[str, Any]]:
        result = self._txn([], [self._range_op(prefix, sort_target, order, limit)])
        return _kvs(result["responses"][0])

    def _get(self, key: str) -> dict[str, Any] | None:
        result = self._post("/kv/range", {"key": _encode(key)})
        kvs = result.get("kvs", [])
        return kvs[0] if kvs else None

    def _grant(self, ttl_s: float) -> tuple[int, int]:
        result = self._post("/lease/grant", {"TTL": max(1, math.ceil(ttl_s)), "ID": 0})
        return int(result["ID"]), int(result.get("TTL", 0))

    def _revoke(self, etcd_lease: int) -> bool:
        try:
            self._post("/kv/lease/revoke", {"ID": etcd_lease})
            return True
        except LeaseError as exc:
            if "not found" in str(exc):
                return False
            raise

    def _keepalive(self, etcd_lease: int) -> int:
        """Seconds left after the renewal, or -1 when etcd no longer has the lease."""
        result = self._post("/lease/keepalive", {"ID": etcd_lease})
        return int(result.get("result", {}).get("TTL", -1))

    # -- reading the state ----------------------------------------------------------------------------------
    def _snapshot(self) -> _Snapshot:
        """Nodes, leases, health and queue at one revision, in one round trip."""
        result = self._txn([], [self._range_op(self._k("node/")), self._range_op(self._k("lease/")),
                                self._range_op(self._k("health/")),
                                self._range_op(self._k("queue/"), sort_target=_BY_CREATE)])
        nodes, leases, health, queue = (_kvs(r) for r in result["responses"])
        held = {_key(kv)[len(self._k("node/")):]: _value(kv) for kv in nodes}
        lease_map = {lease.id: lease for lease in (Lease.from_dict(json.loads(_value(kv))) for kv in leases)}
        records = {r.node: r for r in (HealthRecord.from_dict(json.loads(_value(kv))) for kv in health)}
        health_rev = {_key(kv)[len(self._k("health/")):]: int(kv["mod_revision"]) for kv in health}
        waiting = []
        for kv in queue:
            data = json.loads(_value(kv))
            waiting.append((_key(kv)[len(self._k("queue/")):], int(kv["create_revision"]),
                            Request(nodes=tuple(data["nodes"]), count=data.get("count"))))
        return _Snapshot(held=held, leases=lease_map, health=records, health_rev=health_rev, queue=waiting)

    # -- leasing --------------------------------------------------------------------------------------------
    def _attempt(self, request: Request, holder: Holder, ttl_s: float, ticket: str | None) -> Lease | Blocked:
        for _ in range(_CAS_TRIES):
            snap = self._snapshot()
            mine = next((rev for t, rev, _r in snap.queue if t == ticket), None)
            earlier = [r for t, rev, r in snap.queue if t != ticket and (mine is None or rev < mine)]
            health = {node: snap.health[node].state for node in request.nodes if node in snap.health}
            decision = decide(request, snap.held, health, earlier)
            if decision.nodes is None:
                held_by = {n: snap.leases[snap.held[n]] for n in decision.busy if snap.held[n] in snap.leases}
                return Blocked(decision=decision, held_by=held_by)
            lease = self._try_write(decision.nodes, holder, ttl_s, snap, ticket)
            if lease is not None:
                return lease
            # someone changed those nodes between our look and our write: look again
        raise LeaseError(f"{self.where}: gave up after {_CAS_TRIES} conflicting tries to lease "
                         f"{', '.join(request.nodes)}")

    def _try_write(self, nodes: tuple[str, ...], holder: Holder, ttl_s: float, snap: _Snapshot,
                   ticket: str | None) -> Lease | None:
        etcd_lease, granted = self._grant(ttl_s)
        ttl = float(max(granted, math.ceil(ttl_s)))
        now = time.time()
        lease = Lease(id=f"{etcd_lease:x}", nodes=nodes, holder=holder, acquired_at=now, expires_at=now + ttl,
                      ttl_s=ttl)
        compare = [{"key": _encode(self._k("node/", n)), "result": "EQUAL", "target": "CREATE",
                    "create_revision": 0} for n in nodes]
        compare += [{"key": _encode(self._k("health/", n)), "result": "EQUAL", "target": "MOD",
                     "mod_revision": snap.health_rev.get(n, 0)} for n in nodes]
        success = [{"request_put": {"key": _encode(self._k("node/", n)), "value": _encode(lease.id),
                                    "lease": etcd_lease}} for n in nodes]
        success.append({"request_put": {"key": _encode(self._k("lease/", lease.id)),
                                        "value": _encode(json.dumps(lease.to_dict())), "lease": etcd_lease}})
        if ticket is not None:
            success.append({"request_delete_range": {"key": _encode(self._k("queue/", ticket))}})
        try:
            result = self._txn(compare, success)
        except LeaseError:
            self._revoke(etcd_lease)
            raise
        if result.get("succeeded"):
            return lease
        self._revoke(etcd_lease)  # never leak a lease per failed try
        return None

    def _enqueue(self, request: Request, holder: Holder) -> str:
        etcd_lease, _ = self._grant(TICKET_TTL_S)
        ticket = f"{etcd_lease:x}"
        value = json.dumps({"nodes": list(request.nodes), "count": request.count, "holder": holder.to_dict()})
        self._post("/kv/put", {"key": _encode(self._k("queue/", ticket)), "value": _encode(value),
                               "lease": etcd_lease})
        return ticket

    def _refresh_ticket(self, ticket: str) -> None:
        self._keepalive(int(ticket, 16))

    def _dequeue(self, ticket: str) -> None:
        self._revoke(int(ticket, 16))

    @staticmethod
    def _etcd_id(lease_id: str) -> int:
        try:
            return int(lease_id, 16)
        except ValueError:
            return -1

    def renew(self, lease_id: str) -> Lease:
        etcd_lease = self._etcd_id(lease_id)
        left = self._keepalive(etcd_lease) if etcd_lease > 0 else -1
        if left <= 0:
            raise LeaseLost(self._lost_reason(lease_id, "expired or was released"))
        kv = self._get(self._k("lease/", lease_id))
        if kv is None:  # broken: the keys were deleted in the break's transaction
            raise LeaseLost(self._lost_reason(lease_id, "is gone"))
        lease = Lease.from_dict(json.loads(_value(kv)))
        now = time.time()
        renewed = Lease(id=lease.id, nodes=lease.nodes, holder=lease.holder, acquired_at=lease.acquired_at,
                        expires_at=now + left, ttl_s=lease.ttl_s)
        key = _encode(self._k("lease/", lease_id))
        result = self._txn([{"key": key, "result": "EQUAL", "target": "MOD",
                             "mod_revision": int(kv["mod_revision"])}],
                           [{"request_put": {"key": key, "value": _encode(json.dumps(renewed.to_dict())),
                                             "lease": etcd_lease}}])
        if not result.get("succeeded"):
            kv = self._get(self._k("lease/", lease_id))
            if kv is None:
                raise LeaseLost(self._lost_reason(lease_id, "is gone"))
        return renewed

    def _lost_reason(self, lease_id: str, otherwise: str) -> str:
        try:
            for event in self.lease_events(limit=500):
                if event.lease_id == lease_id and event.kind in ("broken", "released"):
                    return f"lease lost: lease {lease_id} was {event.kind} by {event.by}: {event.why}"
        except LeaseError:
            pass
        return f"lease lost: lease {lease_id} {otherwise} in {self.where}"

    def release(self, lease_id: str, by: str | None = None, why: str | None = None) -> bool:
        etcd_lease = self._etcd_id(lease_id)
        if etcd_lease <= 0:
            return False
        if by is not None:
            why = check_why(why or "", "releasing someone else's lease")
            lease = self.get(lease_id)
            if lease is None:
                return False
            now = time.time()
            event = LeaseEvent(time=now, kind="released", lease_id=lease_id, nodes=lease.nodes,
                               holder=lease.holder, by=by, why=why)
            self._post("/kv/put", {"key": _encode(self._k("event/", _stamp(now))),
                                   "value": _encode(json.dumps(event.to_dict()))})
        return self._revoke(etcd_lease)

    def get(self, lease_id: str) -> Lease | None:
        kv = self._get(self._k("lease/", lease_id))
        return Lease.from_dict(json.loads(_value(kv))) if kv else None

    def list_leases(self) -> list[Lease]:
        leases = [Lease.from_dict(json.loads(_value(kv))) for kv in self._range(self._k("lease/"))]
        return sorted(leases, key=lambda lease: lease.acquired_at)

    def break_node(self, node: str, why: str, by: str) -> Lease:
        why = check_why(why, "breaking a lease")
        for _ in range(_CAS_TRIES):
            kv = self._get(self._k("node/", node))
            if kv is None:
                raise LeaseError(f"node {node} is not leased in {self.where}; nothing to break")
            lease_id = _value(kv)
            lease = self.get(lease_id)
            if lease is None:
                continue  # ending right now; look again
            now = time.time()
            event = LeaseEvent(time=now, kind="broken", lease_id=lease_id, nodes=lease.nodes,
                               holder=lease.holder, by=by, why=why)
            deletes = [{"request_delete_range": {"key": _encode(self._k("node/", n))}} for n in lease.nodes]
            deletes.append({"request_delete_range": {"key": _encode(self._k("lease/", lease_id))}})
            result = self._txn(
                [{"key": _encode(self._k("node/", node)), "result": "EQUAL", "target": "MOD",
                  "mod_revision": int(kv["mod_revision"])}],
                [{"request_put": {"key": _encode(self._k("event/", _stamp(now))),
                                  "value": _encode(json.dumps(event.to_dict()))}}, *deletes])
            if result.get("succeeded"):
                self._revoke(self._etcd_id(lease_id))  # the holder's next renewal fails
                return lease
        raise LeaseError(f"{self.where}: gave up breaking the lease on {node} after {_CAS_TRIES} tries")

    def lease_events(self, limit: int = 100) -> list[LeaseEvent]:
        kvs = self._range(self._k("event/"), order=_DESCEND, limit=limit)
        return [LeaseEvent.from_dict(json.loads(_value(kv))) for kv in kvs]

    # -- node health ----------------------------------------------------------------------------------------
    def health(self, node: str) -> HealthRecord:
        kv = self._get(self._k("health/", node))
        return HealthRecord.from_dict(json.loads(_value(kv))) if kv else HealthRecord.initial(node)

    def all_health(self) -> list[HealthRecord]:
        records = [HealthRecord.from_dict(json.loads(_value(kv))) for kv in self._range(self._k("health/"))]
        return sorted(records, key=lambda r: r.node)

    def _update_health(self, node: str, change: Any) -> HealthRecord:
        """Read, change and write a node's health with compare-and-swap, recording the transition."""
        key = _encode(self._k("health/", node))
        for _ in range(_CAS_TRIES):
            kv = self._get(self._k("health/", node))
            current = HealthRecord.from_dict(json.loads(_value(kv))) if kv else HealthRecord.initial(node)
            record, transition = change(current, time.time())
            if record == current and transition is None:
                return record
            success = [{"request_put": {"key": key, "value": _encode(json.dumps(record.to_dict()))}}]
            if transition is not None:
                history_key = self._k("history/", _stamp(transition.time))
                success.append({"request_put": {"key": _encode(history_key),
                                                "value": _encode(json.dumps(transition.to_dict()))}})
            rev = int(kv["mod_revision"]) if kv else 0
            result = self._txn([{"key": key, "result": "EQUAL", "target": "MOD", "mod_revision": rev}], success)
            if result.get("succeeded"):
                return record
        raise LeaseError(f"{self.where}: gave up updating the health of {node} after {_CAS_TRIES} tries")

    def set_health(self, node: str, state: HealthState | str, why: str, by: str) -> HealthRecord:
        state = state if isinstance(state, HealthState) else HealthState.parse(state)
        return self._update_health(node, lambda cur, now: transitions.set_by_person(cur, state, why, by, now))

    def record_infra_failure(self, node: str, reason: str, session: str | None,
                             bad_after: int = 3) -> HealthRecord:
        return self._update_health(
            node, lambda cur, now: transitions.after_failure(cur, reason, session, now, bad_after))

    def record_success(self, node: str, session: str | None) -> HealthRecord:
        return self._update_health(node, lambda cur, now: transitions.after_success(cur, session, now))

    def health_history(self, node: str | None = None, limit: int = 100) -> list[HealthTransition]:
        # history keys are time-ordered; filter by node client-side (history is small and read by people)
        kvs = self._range(self._k("history/"), order=_DESCEND, limit=0 if node else limit)
        found = [HealthTransition.from_dict(json.loads(_value(kv))) for kv in kvs]
        if node is not None:
            found = [t for t in found if t.node == node]
        return found[:limit]

    def close(self) -> None:
        self._client.session.close()


def _encode(text: str) -> str:
    """Keys and values as UTF-8 (etcd3gw's own helper encodes text as latin-1)."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _prefix_end(prefix: str) -> str:
    raw = bytearray(prefix.encode("utf-8"))
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode("ascii")


def _kvs(response: dict[str, Any]) -> list[dict[str, Any]]:
    return response.get("response_range", {}).get("kvs", [])


def _key(kv: dict[str, Any]) -> str:
    return base64.b64decode(kv["key"]).decode("utf-8")


def _value(kv: dict[str, Any]) -> str:
    return base64.b64decode(kv.get("value", "")).decode("utf-8")


def _stamp(t: float) -> str:
    """A key suffix that sorts by time and never collides."""
    return f"{int(t * 1e9):020d}-{secrets.token_hex(4)}"
