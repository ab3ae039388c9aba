"""Fixtures: one real etcd per test session (127.0.0.1, temp data dir, stopped by PID), and a fresh store of
each kind per test, so the same behavioural tests run on sqlite and on etcd."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from hilt.lease import LeaseStore, open_store
from hilt.lease.local_etcd import LocalEtcd

STORES = ["sqlite", "etcd"]


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[LocalEtcd]:
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed: the etcd store is tested against a real etcd "
                    "(Debian: apt-get install etcd-server)")
    with LocalEtcd() as etcd:
        yield etcd


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/leases.sqlite"
    etcd = request.getfixturevalue("etcd_server")
    return f"{etcd.url}?prefix=/t-{uuid.uuid4().hex[:10]}/"  # a fresh key space per test


@pytest.fixture
def store(store_url: str) -> Iterator[LeaseStore]:
    s = open_store(store_url)
    yield s
    s.close()
