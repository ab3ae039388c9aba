"""Leases on rig nodes (all or nothing, renewed by a heartbeat, lost within the TTL when the holder dies) and
node health, in one store: sqlite on one host, etcd across hosts. See docs/leases.md."""

from hilt.lease.keeper import LeaseKeeper
from hilt.lease.model import HealthRecord, HealthState, HealthTransition, Holder, Lease, LeaseEvent, Waiting
from hilt.lease.store import LeaseStore
from hilt.lease.url import open_store

__all__ = [
    "HealthRecord",
    "HealthState",
    "HealthTransition",
    "Holder",
    "Lease",
    "LeaseEvent",
    "LeaseKeeper",
    "LeaseStore",
    "Waiting",
    "open_store",
]
