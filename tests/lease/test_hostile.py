"""Issue 20 items 1-3: a lease store deleted, replaced or damaged under a holder, and releases by others.

Real sqlite files, deleted, replaced and damaged on disk; the etcd cases run against a real etcd.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hilt.errors import LeaseError
from hilt.exitcodes import ExitCode
from hilt.lease import Holder, LeaseKeeper, cli, open_store
from hilt.lease.sqlite_store import SqliteLeaseStore
from hilt.rig.config import parse_inventory
from hilt.util.locations import default_lease_store_url, state_dir

ALICE = Holder(user="alice", host="ci-runner-7", pid=101, purpose="nightly")
runner = CliRunner()


def _run(app, *args):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


# ---------------------------------------------------------------- item 1: where the store lives


def test_default_store_is_in_the_state_directory_not_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    inventory = parse_inventory("rigs: {sim: {}}\n", base_dir=tmp_path)
    assert inventory.lease_store == f"sqlite://{tmp_path}/state/hilt/leases.sqlite"
    assert "reports" not in inventory.lease_store
    assert cli.default_store_url() == inventory.lease_store  # `hilt leases` without a rigs.yaml: the same store


def test_state_directory_follows_xdg_and_root_uses_var_lib():
    assert state_dir({"XDG_STATE_HOME": "/x/state"}, uid=1000) == Path("/x/state/hilt")
    assert state_dir({"HOME": "/home/bob"}, uid=1000) == Path("/home/bob/.local/state/hilt")
    assert state_dir({"XDG_STATE_HOME": "relative"}, uid=0) == Path("/var/lib/hilt")  # relative: ignored
    assert default_lease_store_url({}, uid=0) == "sqlite:///var/lib/hilt/leases.sqlite"


def test_the_repository_rigs_file_keeps_leases_out_of_reports():
    text = (Path(__file__).parents[2] / "rigs.yaml").read_text()
    assert "reports" not in parse_inventory(text).lease_store


# ---------------------------------------------------------------- item 1: the store deleted or replaced


def test_deleting_the_store_while_held_makes_the_keeper_report_the_lease_lost(tmp_path):
    workdir = tmp_path / "reports"
    holder_store = SqliteLeaseStore(workdir / "leases.sqlite")
    lease = holder_store.acquire(["rig/n1"], ALICE, ttl_s=60)
    keeper = LeaseKeeper(holder_store, lease)
    shutil.rmtree(workdir)  # what `make clean` and CI clean-up steps do

    other = SqliteLeaseStore(workdir / "leases.sqlite")
    second = other.acquire(["rig/n1"], Holder(user="bob", host="desk", pid=7), ttl_s=60)
    assert second.nodes == ("rig/n1",)  # the file is gone: nothing can keep the second one out...
    keeper.renew_now()  # ...but the first holder learns it at its next renewal and stops
    assert keeper.lost
    assert "lease store file" in keeper.lost_reason and "deleted or replaced" in keeper.lost_reason
    assert [x.id for x in other.list_leases()] == [second.id]  # and did not resurrect its lease
    holder_store.close()
    other.close()


@pytest.mark.parametrize("how", ["mv", "cp"])
def test_replacing_the_store_file_makes_the_keeper_report_the_lease_lost(tmp_path, how):
    path = tmp_path / "leases.sqlite"
    store = SqliteLeaseStore(path)
    old = tmp_path / "old.sqlite"
    SqliteLeaseStore(old).close()  # another store (a restored backup, a copied checkout)
    lease = store.acquire(["rig/n1"], ALICE, ttl_s=60)
    keeper = LeaseKeeper(store, lease)
    if how == "mv":
        old.replace(path)  # a new inode at the path
    else:
        shutil.copyfile(old, path)  # the same inode, other contents
    keeper.renew_now()
    assert keeper.lost and "deleted or replaced" in keeper.lost_reason
    store.close()


def test_a_vanished_lease_row_is_reported_lost_on_either_store(store, store_url):
    lease = store.acquire(["rig/n1"], ALICE, ttl_s=60)
    keeper = LeaseKeeper(store, lease)
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url.removeprefix("sqlite://")) as raw:
            raw.execute("DELETE FROM leases")
    else:
        store._txn([], [{"request_delete_range": {"key": _b64(store._k("lease/", lease.id))}}])
    keeper.renew_now()
    assert keeper.lost and lease.id in keeper.lost_reason


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


# ---------------------------------------------------------------- item 2: damaged sqlite


def _held_store(path: Path) -> str:
    store = SqliteLeaseStore(path)
    for i in range(200):  # enough rows for several pages
        store.record_infra_failure(f"rig/n{i}", "SSH never up " * 10, "sess")
    store.acquire(["rig/n1"], ALICE, ttl_s=600)
    store.close()  # the last connection checkpoints the WAL into the file
    return f"sqlite://{path}"


@pytest.mark.parametrize("damage", ["pages", "header"])
def test_damaged_sqlite_is_a_lease_error_everywhere(tmp_path, damage):
    path = tmp_path / "leases.sqlite"
    url = _held_store(path)
    raw = bytearray(path.read_bytes())
    if damage == "pages":
        raw[4096:] = b"\xab" * (len(raw) - 4096)  # every page after the first: garbage
    else:
        raw[:100] = b"\x00" * 100  # the header: "file is not a database"
    path.write_bytes(bytes(raw))

    with pytest.raises(LeaseError, match=r"lease store .*leases\.sqlite is damaged or unreadable"):
        store = open_store(url)
        store.list_leases()
        store.all_health()
        store.acquire(["rig/n2"], ALICE, ttl_s=60)

    result = _run(cli.leases_app, "--lease-store", url)
    assert result.exit_code == ExitCode.INCONCLUSIVE and "damaged or unreadable" in result.output
    assert isinstance(result.exception, SystemExit), result.exception  # an exit, not a traceback


def test_a_keeper_on_a_store_damaged_under_it_keeps_trying_then_reports_lost(tmp_path):
    path = tmp_path / "leases.sqlite"
    store = SqliteLeaseStore(path)
    lease = store.acquire(["rig/n1"], ALICE, ttl_s=0.5)
    keeper = LeaseKeeper(store, lease)
    store.close()
    raw = bytearray(path.read_bytes())
    raw[:100] = b"\x00" * 100
    path.write_bytes(bytes(raw))
    for wal in tmp_path.glob("leases.sqlite-*"):
        wal.unlink()
    keeper.renew_now()  # a LeaseError: logged, retried, not a traceback out of the heartbeat
    keeper._last_ok -= 1.0  # a whole TTL without a renewal
    assert keeper.lost and "not renewed" in keeper.lost_reason


# ---------------------------------------------------------------- item 3: release by someone else


def test_releasing_someone_elses_lease_needs_why_and_tells_the_holder(store, store_url):
    lease = store.acquire(["rig/n1", "rig/n2"], ALICE, ttl_s=60)
    keeper = LeaseKeeper(store, lease)

    refused = _run(cli.leases_app, "release", lease.id, "--lease-store", store_url)
    assert refused.exit_code == ExitCode.USAGE_ERROR, refused.output
    assert "--why" in refused.output and "alice@ci-runner-7" in refused.output
    assert store.is_held(lease.id)

    done = _run(cli.leases_app, "release", lease.id, "--why", "nightly hung since 03:00", "--by", "ops-carol",
                "--lease-store", store_url)
    assert done.exit_code == 0, done.output
    assert not store.is_held(lease.id)

    keeper.renew_now()
    assert keeper.lost
    assert "released by ops-carol: nightly hung since 03:00" in keeper.lost_reason
    listing = _run(cli.leases_app, "--lease-store", store_url)
    assert "released" in listing.output and "nightly hung since 03:00" in listing.output
    assert "ops-carol" in listing.output


def test_releasing_your_own_lease_needs_no_reason(store, store_url):
    lease = store.acquire(["rig/n1"], Holder.current(purpose="crashed run"), ttl_s=60)
    assert _run(cli.leases_app, "release", lease.id, "--lease-store", store_url).exit_code == 0
    assert store.list_leases() == [] and store.lease_events() == []


def test_a_release_by_another_with_an_empty_why_is_refused_by_the_store(store):
    lease = store.acquire(["rig/n1"], ALICE, ttl_s=60)
    with pytest.raises(Exception, match="needs a reason"):
        store.release(lease.id, by="bob", why="  ")
    assert store.is_held(lease.id)
