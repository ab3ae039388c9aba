"""`hilt leases` and `hilt nodes` on both stores, through typer's runner (as the lead mounts them)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hilt.lease import HealthState, Holder, cli

runner = CliRunner()
ALICE = Holder(user="alice", host="laptop", pid=101, purpose="nccl suite")


def _run(app, *args):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_leases_lists_who_holds_what_by_default(store, store_url):
    lease = store.acquire(["rig/n1", "rig/n2"], ALICE, ttl_s=60)
    result = _run(cli.leases_app, "--lease-store", store_url)
    assert result.exit_code == 0, result.output
    assert lease.id in result.output and "rig/n1, rig/n2" in result.output
    assert "alice@laptop pid 101" in result.output and "nccl suite" in result.output


def test_leases_release_and_release_of_unknown_lease(store, store_url):
    lease = store.acquire(["rig/n1"], Holder.current(purpose="my crashed run"), ttl_s=60)
    assert _run(cli.leases_app, "release", lease.id, "--lease-store", store_url).exit_code == 0
    assert store.list_leases() == []
    again = _run(cli.leases_app, "release", lease.id, "--lease-store", store_url)
    assert again.exit_code == 4 and "no lease" in again.output


def test_leases_break_needs_why_and_is_listed_afterwards(store, store_url):
    store.acquire(["rig/n1"], ALICE, ttl_s=60)
    assert _run(cli.leases_app, "break", "rig/n1", "--lease-store", store_url).exit_code != 0  # no --why
    assert store.list_leases()
    broke = _run(cli.leases_app, "break", "rig/n1", "--why", "rack move", "--by", "ops", "--lease-store",
                 store_url)
    assert broke.exit_code == 0, broke.output
    listing = _run(cli.leases_app, "--lease-store", store_url)
    assert "no leases held" in listing.output and "rack move" in listing.output


def test_nodes_set_health_and_list_with_history(store, store_url, monkeypatch):
    monkeypatch.setattr(cli, "known_nodes", lambda: ["rig/n1", "rig/n9"])
    store.record_infra_failure("rig/n1", "SSH never up", "sess-42")
    result = _run(cli.nodes_app, "set-health", "rig/n1", "maintenance", "--why", "fan swap", "--by", "ops",
                  "--lease-store", store_url)
    assert result.exit_code == 0, result.output
    assert store.health("rig/n1").state == HealthState.MAINTENANCE
    listing = _run(cli.nodes_app, "--lease-store", store_url)
    assert listing.exit_code == 0, listing.output
    assert "maintenance" in listing.output and "rig/n9" in listing.output  # inventory node, never checked
    assert "sess-42" in listing.output and "fan swap" in listing.output
    bad = _run(cli.nodes_app, "set-health", "rig/n1", "sick", "--why", "x", "--lease-store", store_url)
    assert bad.exit_code == 4 and "good, unknown, bad, maintenance" in bad.output


def test_default_store_url_comes_from_the_lead(tmp_path, monkeypatch):
    url = f"sqlite://{tmp_path}/from-rigs-yaml.sqlite"
    monkeypatch.setattr(cli, "default_store_url", lambda: url)
    assert _run(cli.leases_app).exit_code == 0
    assert (tmp_path / "from-rigs-yaml.sqlite").exists()


@pytest.mark.parametrize("url", ["bogus://x", "sqlite://", "etcd://", "etcd://h:2379?colour=red"])
def test_bad_store_url_is_a_clear_error(url):
    result = _run(cli.leases_app, "--lease-store", url)
    assert result.exit_code == 4  # a usage error, as everywhere (docs/ci.md)
    assert "sqlite:///abs/path.sqlite" in result.output.replace("\n", "")
