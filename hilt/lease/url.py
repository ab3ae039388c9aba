"""Lease store URLs: ``sqlite:///abs/path``, ``sqlite://relative/path``, ``etcd://host:port``, ``etcds://...``.

One string selects and configures the store, so rigs.yaml and ``--lease-store`` say the same thing. Passwords
never appear in a URL: an etcd password comes from a file or an environment variable named in it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from hilt.errors import ConfigError
from hilt.lease.sqlite_store import SqliteLeaseStore
from hilt.lease.store import LeaseStore
from hilt.util.extras import require

VALID = ("sqlite:///abs/path.sqlite, sqlite://relative/path.sqlite, etcd://host:port or "
         "etcds://host:port (TLS), with etcd options ?ca=FILE&cert=FILE&key=FILE&user=NAME"
         "&password_file=FILE|password_env=VAR&prefix=/hilt/&timeout=SECONDS")

_ETCD_OPTIONS = {"ca", "cert", "key", "user", "password_file", "password_env", "prefix", "timeout"}


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError(f"lease store URL {redact(url)!r} is not valid ({why}): use {VALID}")


def redact(url: str) -> str:
    """The URL without any user:password part, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    return url.replace(parts.netloc, f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else ""))


def open_store(url: str) -> LeaseStore:
    """The store the URL names; ConfigError naming what is valid when it names none."""
    if not isinstance(url, str) or "://" not in url:
        raise _bad(str(url), "no scheme")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme == "sqlite":
        path_text = rest.split("?", 1)[0]
        if not path_text or path_text == "/":
            raise _bad(url, "no file path")
        return SqliteLeaseStore(Path(path_text))  # "///abs" leaves "/abs"; "//rel" leaves "rel"
    if scheme in ("etcd", "etcds"):
        return _open_etcd(url, tls=scheme == "etcds")
    raise _bad(url, f"unknown scheme {scheme!r}")


def _open_etcd(url: str, tls: bool) -> LeaseStore:
    parts = urlsplit(url)
    if parts.password is not None:
        raise _bad(url, "a password in the URL would end up in logs; use password_file= or password_env=")
    try:
        port = parts.port or 2379
    except ValueError as exc:
        raise _bad(url, f"bad port: {exc}") from None
    if not parts.hostname:
        raise _bad(url, "no host")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - _ETCD_OPTIONS
    if unknown:
        raise _bad(url, f"unknown option(s) {', '.join(sorted(unknown))}")
    for name in ("ca", "cert", "key", "password_file"):
        if name in query and not Path(query[name]).is_file():
            raise ConfigError(f"lease store URL option {name}={query[name]!r}: no such file")
    if ("cert" in query) != ("key" in query):
        raise _bad(url, "cert= and key= go together")
    if not tls and any(name in query for name in ("ca", "cert", "key")):
        raise _bad(url, "ca/cert/key need etcds:// (TLS)")
    user = query.get("user") or parts.username
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
    try:
        timeout = float(query.get("timeout", "10"))
    except ValueError:
        raise _bad(url, f"timeout={query['timeout']!r} is not a number") from None
    prefix = query.get("prefix", "/hilt/")
    if not prefix.endswith("/"):
        prefix += "/"
    require("etcd3gw", "etcd", f"lease store {parts.scheme}://{parts.hostname}")
    from hilt.lease.etcd_store import EtcdLeaseStore  # the etcd extra (etcd3gw): only for an etcd:// store

    return EtcdLeaseStore(host=parts.hostname, port=port, tls=tls, ca=query.get("ca"), cert=query.get("cert"),
                          key=query.get("key"), user=user, password=password, prefix=prefix, timeout=timeout)
