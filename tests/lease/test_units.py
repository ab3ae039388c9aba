"""Pure parts: store URLs, holder identity from CI environments, the fairness rule."""

from __future__ import annotations

import pytest

from hilt.errors import ConfigError
from hilt.lease import Holder, open_store
from hilt.lease.etcd_store import EtcdLeaseStore
from hilt.lease.fairness import Request, decide
from hilt.lease.model import HealthState
from hilt.lease.sqlite_store import SqliteLeaseStore


def test_sqlite_urls_absolute_and_relative(tmp_path, monkeypatch):
    absolute = open_store(f"sqlite://{tmp_path}/a/leases.sqlite")
    assert isinstance(absolute, SqliteLeaseStore) and absolute.path == tmp_path / "a" / "leases.sqlite"
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite://reports/leases.sqlite")
    assert (tmp_path / "reports" / "leases.sqlite").exists() and not relative.path.is_absolute()


def test_etcd_url_options(tmp_path, monkeypatch):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    store = open_store(f"etcds://etcd.lab:2379?ca={ca}&prefix=/team")
    assert isinstance(store, EtcdLeaseStore)
    assert store.where == "etcd at https://etcd.lab:2379/team/"
    with pytest.raises(ConfigError, match="HILT_ETCD_PASSWORD"):
        open_store("etcd://etcd.lab:2379?user=hilt")
    monkeypatch.setenv("HILT_ETCD_PASSWORD", "s3cret")
    assert isinstance(open_store("etcd://etcd.lab:2379?user=hilt"), EtcdLeaseStore)


@pytest.mark.parametrize(("url", "why"), [
    ("etcd://u:s3cret@etcd.lab:2379", "password in the URL"),
    ("etcds://etcd.lab:2379?ca=/nope.pem", "no such file"),
    ("etcd://etcd.lab:2379?ca=/nope.pem", "need etcds://"),
    ("etcd://u:s3c/ret@etcd.lab:2379", "password in the URL"),
    ("etcd://etcd.lab:2379?timeout=soon", "not a number"),
    ("redis://x", "unknown scheme"),
])
def test_bad_urls_name_the_problem_and_never_the_password(url, why):
    with pytest.raises(ConfigError, match=why) as err:
        open_store(url)
    assert "s3c" not in str(err.value)


@pytest.mark.parametrize(("env", "job", "url"), [
    ({"GITHUB_RUN_ID": "77", "GITHUB_REPOSITORY": "org/img"}, "github:77",
     "https://github.com/org/img/actions/runs/77"),
    ({"CI_JOB_ID": "12", "CI_JOB_URL": "https://gitlab/j/12"}, "gitlab:12", "https://gitlab/j/12"),
    ({"BUILD_TAG": "jenkins-img-5", "BUILD_URL": "https://ci/5/"}, "jenkins:jenkins-img-5", "https://ci/5/"),
    ({}, None, None),
])
def test_holder_carries_the_ci_job(env, job, url):
    holder = Holder.current("suites", env=env)
    assert (holder.ci_job, holder.ci_url, holder.purpose) == (job, url, "suites")
    assert Holder.from_dict(holder.to_dict()) == holder
    assert (f"(CI {job})" in holder.describe()) == (job is not None)


def test_fairness_first_come_first_served_per_node():
    big, small = Request(("a", "b", "c", "d")), Request(("b",))
    assert decide(small, held={}, health={}, earlier=[big]).nodes is None
    assert decide(small, held={}, health={}, earlier=[]).nodes == ("b",)
    assert decide(Request(("e",)), held={}, health={}, earlier=[big]).nodes == ("e",)
    blocked = decide(big, held={"a": "L1"}, health={}, earlier=[])
    assert blocked.nodes is None and blocked.busy == ("a",)
    maint = decide(small, held={}, health={"b": HealthState.MAINTENANCE}, earlier=[])
    assert maint.refused and "b is maintenance" in maint.refused
