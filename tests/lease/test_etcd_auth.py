"""etcd with authentication enabled: hilt logs in with user/password; without them it is refused."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from hilt.errors import LeaseError
from hilt.lease import Holder, open_store
from hilt.lease.local_etcd import LocalEtcd


@pytest.mark.skipif(shutil.which("etcdctl") is None, reason="etcdctl (Debian etcd-client) not installed")
def test_etcd_with_auth_needs_and_uses_credentials(tmp_path, monkeypatch):
    with LocalEtcd() as etcd:  # its own etcd: enabling auth must not affect the shared one
        env = dict(os.environ, ETCDCTL_API="3")
        for args in (["user", "add", "root:t0psecret"], ["auth", "enable"]):
            subprocess.run(["etcdctl", f"--endpoints=127.0.0.1:{etcd.client_port}", *args], env=env,
                           check=True, capture_output=True, timeout=30)
        with pytest.raises(LeaseError, match="user name is empty"):
            open_store(etcd.url).list_leases()
        secret = tmp_path / "etcd-password"
        secret.write_text("t0psecret\n")
        store = open_store(f"{etcd.url}?user=root&password_file={secret}")
        lease = store.acquire(["rig/n1"], Holder.current("auth"), ttl_s=5)
        assert store.renew(lease.id).id == lease.id
        monkeypatch.setenv("HILT_ETCD_PASSWORD", "wrong")
        with pytest.raises(LeaseError) as err:
            open_store(f"{etcd.url}?user=root").list_leases()
        assert "wrong" not in str(err.value) and "t0psecret" not in str(err.value)
