"""A password written into a store URL (``scheme://user:secret@host/...``): found, and kept out of messages.

hilt never takes a password in a URL (rigs.yaml's ``lease_store:`` and ``history:``, ``--history``, ``--to``):
it would end up in logs, reports and CI output. A password may hold ``/``, ``?`` or ``#``, which
``urllib.parse.urlsplit`` (and libpq) read as the end of the authority: ``postgresql://u:pa/ss@host/db`` has no
password for them, only a host ``u`` and a bad port. So the user part is taken as everything before the last
``@``, never from a URL parser, both to refuse the URL and to show it. An ``@`` later in the URL (a database name,
a query value) is written ``%40``.
"""

from __future__ import annotations


def _userinfo(url: str) -> tuple[str, str, str] | None:
    """(scheme, user part, the rest after its ``@``), or None when ``url`` has no user part."""
    if "://" not in url:
        return None
    scheme, rest = url.split("://", 1)
    userinfo, at, host = rest.rpartition("@")
    return (scheme, userinfo, host) if at else None


def has_password(url: str) -> bool:
    """Whether ``url`` carries a password in its user part (``user:secret@host``), however the secret is spelt
    (with ``/``, ``?``, ``#`` or percent-encoded)."""
    parts = _userinfo(url)
    return parts is not None and ":" in parts[1]


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``user:***@host/db``), for messages and logs."""
    parts = _userinfo(url)
    if parts is None or ":" not in parts[1]:
        return url
    scheme, userinfo, host = parts
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"
