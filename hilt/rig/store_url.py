"""Lease store URLs, checked for form (no I/O): ``sqlite:///abs/path``, ``sqlite://rel/path``, ``etcd://host:port``.

One string selects and configures the store, so rigs.yaml and ``--lease-store`` say the same thing. Passwords
never appear in a URL: an etcd password comes from a file or an environment variable named in it.

The form lives with rigs.yaml (it is checked when the file loads), apart from the stores that hilt.lease.url
opens: the SSH and BMC edges read rigs.yaml too, and must not depend on the lease store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from hilt.errors import ConfigError
from hilt.util.url_password import has_password
from hilt.util.url_password import redact as redact_password

VALID = ("sqlite:///abs/path.sqlite, sqlite://relative/path.sqlite, etcd://host:port or "
         "etcds://host:port (TLS), with etcd options ?ca=FILE&cert=FILE&key=FILE&user=NAME"
         "&password_file=FILE|password_env=VAR&prefix=/hilt/&timeout=SECONDS")

_ETCD_OPTIONS = {"ca", "cert", "key", "user", "password_file", "password_env", "prefix", "timeout"}


class StoreUrlError(ConfigError):
    """A lease store URL that names no store; ``problem`` says why without the words "lease store URL", for
    callers that already name the field (rigs.yaml's ``lease_store:``)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"lease store URL {problem}")
        self.problem = problem


def _bad(url: str, why: str) -> StoreUrlError:
    return StoreUrlError(f"{redact(url)!r} is not valid ({why}): use {VALID}")


def redact(url: str) -> str:
    """The URL without any password (``user:***@host``), for messages (hilt.util.url_password); a ``sqlite:``
    URL is a file path, in which an ``@`` is part of the name."""
    if url.lower().startswith("sqlite:"):
        return url
    return redact_password(url)


@dataclass(frozen=True)
class StoreUrl:
    """A lease store URL checked for form (no I/O): what rigs.yaml says and ``--lease-store`` says alike."""

    scheme: str
    path: str = ""
    host: str = ""
    port: int = 2379
    options: dict[str, str] = field(default_factory=dict)
    username: str | None = None

    @property
    def tls(self) -> bool:
        return self.scheme == "etcds"


def parse_url(url: object) -> StoreUrl:
    """``url`` checked for form: a known scheme, a path or host, known options, no password.

    rigs.yaml is checked with this at load (``hilt rigs check``), so a typo fails before a run rather than at
    the lease; files named in options and the password's variable are looked at only when the store opens."""
    if not isinstance(url, str) or "://" not in url:
        raise _bad(str(url), "no scheme")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme == "sqlite":
        path_text = rest.split("?", 1)[0]
        if not path_text or path_text == "/":
            raise _bad(url, "no file path")
        return StoreUrl(scheme, path=path_text)  # "///abs" leaves "/abs"; "//rel" leaves "rel"
    if scheme not in ("etcd", "etcds"):
        raise _bad(url, f"unknown scheme {scheme!r}")
    if has_password(url):
        raise _bad(url, "a password in the URL would end up in logs; use password_file= or password_env=")
    parts = urlsplit(url)
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
    if ("cert" in query) != ("key" in query):
        raise _bad(url, "cert= and key= go together")
    if scheme == "etcd" and any(name in query for name in ("ca", "cert", "key")):
        raise _bad(url, "ca/cert/key need etcds:// (TLS)")
    try:
        float(query.get("timeout", "10"))
    except ValueError:
        raise _bad(url, f"timeout={query['timeout']!r} is not a number") from None
    return StoreUrl(scheme, host=parts.hostname, port=port, options=query, username=parts.username)
