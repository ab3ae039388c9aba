"""LeaseHold: the one way a session and a rollout hold a rig's nodes (hilt/lease/hold.py).

On both real stores (sqlite, a real etcd). A store fault that a real store cannot be made to produce on cue (a
release or a health write failing) comes from a thin wrapper that raises the store's own error type.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from hilt.errors import LeaseError
from hilt.lease import Holder, open_store
from hilt.lease.hold import LeaseHold
from hilt.provision.boot import ProvisionResult


def wait_for(predicate, timeout_s: float = 10.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class FailingStore:
    """The real store, except that the calls named in ``fail`` raise what a store raises when it cannot answer."""

    def __init__(self, store, fail: dict[str, set[str] | None]):  # noqa: ANN001
        self._store = store
        self._fail = fail  # method -> the keys it fails for (None: every call)
        self.closed = False

    def __getattr__(self, name: str):  # noqa: ANN204
        real = getattr(self._store, name)
        if name not in self._fail:
            return real
        keys = self._fail[name]

        def call(key: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if keys is None or key in keys:
                raise LeaseError(f"{self._store.where}: {name} failed: connection reset")
            return real(key, *args, **kwargs)

        return call

    def close(self) -> None:
        self.closed = True
        self._store.close()


def test_a_hold_leases_the_rig_nodes_keeps_them_past_the_ttl_and_gives_them_back(store_url: str, tmp_path: Path):
    hold = LeaseHold.open(store_url, "lab", "run-1", lost_file=tmp_path / "lease-lost")
    other = open_store(store_url)
    try:
        lease = hold.acquire(["n1", "n2"], "hilt run run-1 on rig lab", ttl_s=0.6, wait_s=0)
        assert sorted(lease.nodes) == ["lab/n1", "lab/n2"]
        assert [(x.id, x.holder.purpose) for x in other.list_leases()] == [(lease.id, "hilt run run-1 on rig lab")]
        time.sleep(1.5)  # two and a half TTLs: the heartbeat keeps it
        assert other.get(lease.id) is not None and hold.lost_reason is None
        with pytest.raises(LeaseError):
            other.acquire(["lab/n1"], Holder.current(purpose="someone else"), ttl_s=5, wait_s=0)
        hold.release()
        assert other.list_leases() == []
        taken = other.acquire(["lab/n1"], Holder.current(purpose="someone else"), ttl_s=5, wait_s=0)
        other.release(taken.id)
        hold.release()  # twice: nothing happens
        assert not (tmp_path / "lease-lost").exists()
    finally:
        hold.release()
        other.close()


def test_a_lost_lease_is_written_to_the_lost_file_that_every_worker_checks(store_url: str, tmp_path: Path):
    lost_file = tmp_path / "lease-lost"
    lost_file.write_text("left by the controller this rollout resumes")
    hold = LeaseHold.open(store_url, "lab", "run-2", lost_file=lost_file)
    other = open_store(store_url)
    try:
        hold.acquire(["n1"], "hilt run run-2 on rig lab", ttl_s=0.6, wait_s=0)
        assert not lost_file.exists()  # an old holder's file is not this lease's loss
        other.break_node("lab/n1", why="rack power work", by="ops")
        assert wait_for(lost_file.exists), "the keeper's watcher wrote no lease-lost file"
        assert lost_file.read_text() == hold.lost_reason
        assert hold.lost_reason.startswith("lease lost") and "rack power work" in hold.lost_reason
    finally:
        hold.release()
        other.close()


def test_boots_count_for_health_and_each_result_says_its_node_health(store_url: str):
    hold = LeaseHold.open(store_url, "lab", "run-3", bad_after=2)
    try:
        for attempt in (1, 2):
            results = {"n1": ProvisionResult(node="n1", ok=True),
                       "n2": ProvisionResult(node="n2", ok=False, error="node n2 did not come up within 5 s")}
            hold.record_health(results)
            assert results["n1"].evidence["health"] == "good"
            assert results["n2"].evidence["health"] == ("unknown" if attempt == 1 else "bad")
        record = hold.health("n2")
        assert (record.state.value, record.consecutive_failures) == ("bad", 2)
        assert "did not come up" in record.reason
        assert all(t.session == "run-3" for t in hold.store.health_history("lab/n2"))
        hold.store.set_health("lab/n1", "maintenance", why="DIMM swap", by="ops")
        assert {name: r.state.value for name, r in hold.sick(["n1", "n2"]).items()} == {
            "n1": "maintenance", "n2": "bad"}
    finally:
        hold.release()


def test_a_health_write_that_fails_costs_a_warning_and_no_other_node(tmp_path: Path, caplog):
    real = open_store(f"sqlite://{tmp_path}/leases.sqlite")
    hold = LeaseHold(FailingStore(real, {"record_success": {"lab/n1"}}), "lab", "run-4")
    results = {"n1": ProvisionResult(node="n1", ok=True), "n2": ProvisionResult(node="n2", ok=True)}
    with caplog.at_level(logging.WARNING, logger="hilt.lease.hold"):
        hold.record_health(results)
    assert "health" not in results["n1"].evidence  # not recorded, so not claimed
    assert results["n2"].evidence["health"] == "good"
    assert "node n1: health not recorded" in caplog.text and "connection reset" in caplog.text
    hold.release()


def test_release_closes_the_store_even_when_giving_the_lease_back_fails(tmp_path: Path, caplog):
    """The session used to leave its store open (an etcd session, a sqlite connection) after every run."""
    real = open_store(f"sqlite://{tmp_path}/leases.sqlite")
    store = FailingStore(real, {"release": None})
    hold = LeaseHold(store, "lab", "run-5")
    lease = hold.acquire(["n1"], "hilt run run-5 on rig lab", ttl_s=30, wait_s=0)
    with caplog.at_level(logging.WARNING, logger="hilt.lease.hold"):
        hold.release()
    assert store.closed
    assert f"lease {lease.id} not released" in caplog.text
    assert hold.keeper is None and hold.lease is None


def test_release_without_a_lease_closes_the_store(tmp_path: Path):
    """A session whose nodes were all sick, or whose acquire timed out, still closes what it opened."""
    store = FailingStore(open_store(f"sqlite://{tmp_path}/leases.sqlite"), {})
    LeaseHold(store, "lab", "run-6").release()
    assert store.closed
