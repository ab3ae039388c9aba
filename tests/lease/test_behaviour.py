"""The behaviour a user of either lease store relies on; every test runs on sqlite and on a real etcd."""

from __future__ import annotations

import threading
import time

import pytest

from hilt.errors import ConfigError, LeaseError, LeaseLost, LeaseWaitCancelled
from hilt.lease import HealthState, Holder, LeaseKeeper, Waiting, open_store

ALICE = Holder(user="alice", host="laptop", pid=101, purpose="nccl suite")
BOB = Holder(user="bob", host="ci-7", pid=202, ci_job="gitlab:999", purpose="nightly")


def test_lease_is_all_or_nothing_and_names_the_holder(store):
    store.acquire(["rig/n2"], ALICE, ttl_s=30)
    with pytest.raises(LeaseError) as err:
        store.acquire(["rig/n1", "rig/n2"], BOB, ttl_s=30)
    assert "rig/n2 held by alice@laptop pid 101" in str(err.value)
    assert "nccl suite" in str(err.value)
    # nothing was half-taken: n1 is still free for anyone
    lease = store.acquire(["rig/n1"], BOB, ttl_s=30)
    assert [sorted(lease.nodes) for lease in store.list_leases()] == [["rig/n2"], ["rig/n1"]]
    assert lease.holder == BOB and lease.purpose == "nightly"


def test_release_frees_the_nodes_and_is_idempotent(store):
    lease = store.acquire(["a", "b"], ALICE, ttl_s=30)
    assert store.is_held(lease.id)
    assert store.release(lease.id) is True
    assert store.release(lease.id) is False
    assert not store.is_held(lease.id)
    assert store.acquire(["a", "b"], BOB, ttl_s=30).nodes == ("a", "b")


def test_renew_extends_and_a_released_lease_is_lost(store):
    lease = store.acquire(["a"], ALICE, ttl_s=5)
    time.sleep(1.1)
    renewed = store.renew(lease.id)
    assert renewed.expires_at > lease.expires_at + 0.5
    store.release(lease.id)
    with pytest.raises(LeaseLost, match="lease lost"):
        store.renew(lease.id)


def test_lease_not_renewed_expires_within_ttl(store):
    lease = store.acquire(["a"], ALICE, ttl_s=1)
    start = time.monotonic()
    taken = store.acquire(["a"], BOB, ttl_s=30, wait_s=5)
    assert time.monotonic() - start < 2.5
    assert taken.holder == BOB
    with pytest.raises(LeaseLost, match="lease lost"):
        store.renew(lease.id)


def test_waiter_sees_who_holds_what_and_gets_nodes_on_release(store):
    held = store.acquire(["a"], ALICE, ttl_s=30)
    seen: list[Waiting] = []
    threading.Timer(0.5, store.release, args=(held.id,)).start()
    lease = store.acquire(["a", "b"], BOB, ttl_s=30, wait_s=10, on_wait=seen.append)
    assert lease.nodes == ("a", "b")
    assert seen and seen[0].held_by["a"].holder == ALICE
    assert "a held by alice@laptop" in seen[0].describe()


def _wait_until_queued(store, nodes, holder, results, ttl_s=30.0, wait_s=15.0):
    """Start a waiting acquire in a thread; return once it is queued."""
    queued = threading.Event()

    def run():
        try:
            results.append(store.acquire(nodes, holder, ttl_s=ttl_s, wait_s=wait_s,
                                         on_wait=lambda w: queued.set()))
        except LeaseError as exc:
            results.append(exc)
        queued.set()

    thread = threading.Thread(target=run)
    thread.start()
    assert queued.wait(10)
    time.sleep(0.3)  # past its first look: its ticket is in the queue
    return thread


def test_a_big_waiter_is_not_overtaken_by_small_ones(store):
    first = store.acquire(["a"], ALICE, ttl_s=30)
    results: list = []
    thread = _wait_until_queued(store, ["a", "b", "c", "d"], BOB, results)
    # b, c, d are free, but the earlier waiter wants them: a later request must queue behind it
    with pytest.raises(LeaseError, match="earlier waiter"):
        store.acquire(["b"], ALICE, ttl_s=30)
    store.release(first.id)
    thread.join(10)
    assert results and results[0].nodes == ("a", "b", "c", "d")


def test_requests_for_other_nodes_pass_a_waiter(store):
    first = store.acquire(["a"], ALICE, ttl_s=30)
    results: list = []
    thread = _wait_until_queued(store, ["a", "b"], BOB, results, wait_s=3)
    assert store.acquire(["c"], ALICE, ttl_s=30).nodes == ("c",)
    store.release(first.id)
    thread.join(10)
    assert results[0].nodes == ("a", "b")


def test_waiting_gives_up_after_wait_s_naming_the_holder(store):
    store.acquire(["a"], ALICE, ttl_s=30)
    start = time.monotonic()
    with pytest.raises(LeaseError, match=r"within 0.6 s: a held by alice@laptop"):
        store.acquire(["a"], BOB, ttl_s=30, wait_s=0.6)
    assert 0.5 < time.monotonic() - start < 3


@pytest.mark.parametrize("matching", [False, True], ids=["exact", "matching"])
def test_a_cancelled_wait_ends_at_once_and_leaves_the_queue(store, matching):
    """A run stopped while it waits (a signal, to another thread than the waiting one) calls the wait off: it
    ends within a poll, holds nothing, and a later request for the same nodes is no longer queued behind it.
    Before: the wait went on until ``wait_s`` (here 60 s), its place in the queue kept alive all along."""
    held = store.acquire(["rig/a"], ALICE, ttl_s=30)
    cancel = threading.Event()
    queued = threading.Event()
    outcome: list = []

    def wait() -> None:
        start = time.monotonic()
        try:
            if matching:
                store.acquire_matching(["rig/a", "rig/b"], 2, BOB, ttl_s=30, wait_s=60, on_wait=lambda w: queued.set(),
                                       cancel=cancel)
            else:
                store.acquire(["rig/a", "rig/b"], BOB, ttl_s=30, wait_s=60, on_wait=lambda w: queued.set(),
                              cancel=cancel)
        except LeaseError as exc:
            outcome.append(exc)
        outcome.append(time.monotonic() - start)
        queued.set()

    thread = threading.Thread(target=wait)
    thread.start()
    assert queued.wait(10)
    time.sleep(0.3)  # past its first look: its ticket is in the queue
    with pytest.raises(LeaseError, match="earlier waiter"):  # rig/b is free, but the waiter wants it first
        store.acquire(["rig/b"], ALICE, ttl_s=30)
    called_off = time.monotonic()
    cancel.set()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - called_off < 1.0
    error, _ = outcome
    assert isinstance(error, LeaseWaitCancelled), error
    assert "left the queue, nothing leased" in str(error)
    assert [lease.id for lease in store.list_leases()] == [held.id]
    # out of the queue at once, not after its ticket's TTL: the free node is granted without waiting
    assert store.acquire(["rig/b"], ALICE, ttl_s=30).nodes == ("rig/b",)
    store.release(held.id)
    assert store.acquire(["rig/a"], ALICE, ttl_s=30).nodes == ("rig/a",)


def test_a_wait_cancelled_before_it_starts_leases_nothing(store):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(LeaseWaitCancelled):
        store.acquire(["rig/a"], BOB, ttl_s=30, wait_s=60, cancel=cancel)
    assert store.list_leases() == []


def test_acquire_matching_takes_free_leasable_nodes_good_first(store):
    store.set_health("n1", "bad", "fans", "ops")
    store.record_success("n3", "s0")  # unknown -> good
    store.acquire(["n4"], ALICE, ttl_s=30)
    lease = store.acquire_matching(["n1", "n2", "n3", "n4"], 1, BOB, ttl_s=30)
    assert lease.nodes == ("n3",)  # n1 bad, n4 held, n3 known good before unknown n2
    with pytest.raises(LeaseError, match="only 3 can be leased"):
        store.acquire_matching(["n1", "n2", "n3", "n4"], 4, BOB, ttl_s=30, wait_s=5)
    with pytest.raises(LeaseError, match="could not lease 2 of"):
        store.acquire_matching(["n1", "n2", "n3", "n4"], 2, BOB, ttl_s=30)


@pytest.mark.parametrize("state", ["bad", "maintenance"])
def test_nodes_in_bad_or_maintenance_are_never_leased(store, state):
    store.set_health("rig/n1", state, "reflashing BMC", "ops")
    start = time.monotonic()
    with pytest.raises(LeaseError, match=f"rig/n1 is {state}"):
        store.acquire(["rig/n1", "rig/n2"], ALICE, ttl_s=30, wait_s=5)
    assert time.monotonic() - start < 2  # refused at once, not after waiting
    assert store.list_leases() == []
    store.set_health("rig/n1", "good", "reflashed", "ops")
    assert store.acquire(["rig/n1"], ALICE, ttl_s=30).nodes == ("rig/n1",)


def test_health_after_lava_failures_go_unknown_then_bad(store):
    assert store.health("n1").state == HealthState.UNKNOWN  # never checked
    first = store.record_infra_failure("n1", "SSH never up", "session-1")
    assert first.state == HealthState.UNKNOWN and first.consecutive_failures == 1
    store.record_infra_failure("n1", "boot timeout", "session-2")
    third = store.record_infra_failure("n1", "BMC 503", "session-3")
    assert third.state == HealthState.BAD and third.consecutive_failures == 3
    assert store.record_success("n1", "session-4").state == HealthState.BAD  # only a person heals bad
    history = store.health_history("n1")
    assert [(t.to_state.value, t.session) for t in history] == [
        ("bad", "session-3"), ("unknown", "session-2"), ("unknown", "session-1")]
    assert "BMC 503" in history[0].reason
    healed = store.set_health("n1", "good", "replaced PSU", "carol")
    assert healed.consecutive_failures == 0 and healed.reason == "replaced PSU"
    assert store.health_history("n1", limit=1)[0].by == "carol"
    assert store.record_infra_failure("n1", "x", "s5").state == HealthState.UNKNOWN


def test_success_clears_unknown_and_failure_count(store):
    store.record_infra_failure("n1", "boot timeout", "s1")
    store.record_infra_failure("n1", "boot timeout", "s2")
    assert store.record_success("n1", "s3").state == HealthState.GOOD
    assert store.record_infra_failure("n1", "boot timeout", "s4").consecutive_failures == 1
    assert [r.node for r in store.all_health()] == ["n1"]


def test_setting_health_needs_a_reason_and_a_valid_state(store):
    with pytest.raises(ConfigError, match="--why"):
        store.set_health("n1", "good", "  ", "ops")
    with pytest.raises(ConfigError, match="good, unknown, bad, maintenance"):
        store.set_health("n1", "fine", "ok", "ops")


def test_break_is_recorded_and_the_holder_is_told_who_and_why(store):
    lease = store.acquire(["rig/n1", "rig/n2"], ALICE, ttl_s=30)
    broken = store.break_node("rig/n2", "rack power work", "dave")
    assert broken.id == lease.id
    assert store.list_leases() == []  # the whole lease ended, not just one node
    with pytest.raises(LeaseLost, match="broken by dave: rack power work"):
        store.renew(lease.id)
    event = store.lease_events()[0]
    assert (event.lease_id, event.by, event.why, event.holder) == (lease.id, "dave", "rack power work", ALICE)
    with pytest.raises(LeaseError, match="not leased"):
        store.break_node("rig/n2", "again", "dave")
    with pytest.raises(ConfigError, match="reason"):
        store.break_node("rig/n1", "", "dave")


def test_keeper_keeps_the_lease_past_its_ttl_and_reports_loss(store):
    lease = store.acquire(["a"], ALICE, ttl_s=1)
    with LeaseKeeper(store, lease, interval_s=0.3) as keeper:
        time.sleep(2.2)
        assert not keeper.lost
        with pytest.raises(LeaseError):
            store.acquire(["a"], BOB, ttl_s=30)
        store.break_node("a", "needed for a hotfix", "erin")
        deadline = time.monotonic() + 3
        while not keeper.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert keeper.lost
        assert "broken by erin: needed for a hotfix" in keeper.lost_reason
        with pytest.raises(LeaseLost, match="lease lost"):
            keeper.check()


def test_another_client_sees_the_lease_and_can_join_it(store, store_url):
    lease = store.acquire(["rig/nœud-1", "rig/n2"], BOB, ttl_s=30)
    other = open_store(store_url)  # e.g. an xdist worker of the same session
    try:
        joined = other.get(lease.id)
        assert joined is not None and joined.nodes == ("rig/nœud-1", "rig/n2") and joined.holder == BOB
        assert other.renew(lease.id).id == lease.id
        with pytest.raises(LeaseError, match="rig/nœud-1 held by bob@ci-7 pid 202 \\(CI gitlab:999\\)"):
            other.acquire(["rig/nœud-1"], ALICE, ttl_s=30)
    finally:
        other.close()
    assert store.get("no-such-lease") is None


def test_bad_requests_are_config_errors(store):
    with pytest.raises(ConfigError, match="at least one node"):
        store.acquire([], ALICE)
    with pytest.raises(ConfigError, match="named twice"):
        store.acquire(["a", "a"], ALICE)
    for ttl in (0, -1, float("nan"), float("inf")):  # nan slipped past `<= 0`: a lease that never expired
        with pytest.raises(ConfigError, match="TTL must be a positive number"):
            store.acquire(["a"], ALICE, ttl_s=ttl)
    with pytest.raises(ConfigError, match="lease wait must be zero or positive"):
        store.acquire(["a"], ALICE, wait_s=float("nan"))
    assert store.list_leases() == [], "a refused request holds nothing"
