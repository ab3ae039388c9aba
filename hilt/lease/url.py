"""Opening the lease store a URL names (its form: hilt.rig.store_url)."""

from __future__ import annotations

import os
from pathlib import Path

from hilt.errors import ConfigError
from hilt.lease.sqlite_store import SqliteLeaseStore
from hilt.lease.store import LeaseStore
from hilt.rig.store_url import StoreUrl, parse_url
from hilt.util.extras import require


def open_store(url: str) -> LeaseStore:
    """The store the URL names; ConfigError naming what is valid when it names none."""
    parsed = parse_url(url)
    if parsed.scheme == "sqlite":
        return SqliteLeaseStore(Path(parsed.path))
    return _open_etcd(parsed)


def _open_etcd(url: StoreUrl) -> LeaseStore:
    query = url.options
    for name in ("ca", "cert", "key", "password_file"):
        if name in query and not Path(query[name]).is_file():
            raise ConfigError(f"lease store URL option {name}={query[name]!r}: no such file")
    user = query.get("user") or url.username
    password = None
    if user:
        if "password_file" in query:
            password = Path(query["password_file"]).read_text().strip()
        else:
            var = query.get("password_env", "HILT_ETCD_PASSWORD")
            password = os.environ.get(var)
            if password is None:
                raise ConfigError(f"lease store URL names etcd user {user!r} but environment variable {var} "
                                  "(the password) is not set; or use password_file=FILE")
    timeout = float(query.get("timeout", "10"))
    prefix = query.get("prefix", "/hilt/")
    if not prefix.endswith("/"):
        prefix += "/"
    require("etcd3gw", "etcd", f"lease store {url.scheme}://{url.host}")
    from hilt.lease.etcd_store import EtcdLeaseStore  # the etcd extra (etcd3gw): only for an etcd:// store

    return EtcdLeaseStore(host=url.host, port=url.port, tls=url.tls, ca=query.get("ca"), cert=query.get("cert"),
                          key=query.get("key"), user=user, password=password, prefix=prefix, timeout=timeout)
