"""Keeping BMC secrets (passwords, session tokens, basic-auth keys, session cookies) out of every text we make.

Two nets, because either alone leaks:
- **by value**: every live secret is known here while its connection lives, and replaced wherever it appears,
  at every length (a 2-character password too), in each form a BMC or a library could render it: as is,
  JSON-escaped (``"`` -> ``\\"``, ``\\`` -> ``\\\\``, non-ASCII -> ``\\u00e9``), Python-repr'd, URL-encoded,
  HTML-escaped, and UTF-8 read as Latin-1;
- **by structure**: values under secret-looking keys (``Password``, ``X-Auth-Token``, ``Authorization``,
  ``Cookie``, ``Set-Cookie``, ``token``...) in JSON bodies, header dicts and ``Key: value`` / ``"Key": "value"``
  text are replaced before a value is known to be secret (a cookie a BMC set on an error answer, an echoed body
  whose escaping we did not foresee).

Everything the BMC layer renders (exception texts, log records of ``hilt.bmc``) goes through ``REDACTOR``.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "<redacted>"

_SECRET_KEY = re.compile(r"pass(?:word|wd|phrase)?$|secret|token|cookie|authori[sz]ation|session[-_]?key|"
                         r"^x-auth|credential|^key$|^userpassword$", re.IGNORECASE)

# Header lines ("Set-Cookie: SESSION=abc; Path=/"), JSON members ("Password": "a\"b"), and key=value pairs.
_KEYS = (r"X-Auth-Token|Authorization|Proxy-Authorization|Set-Cookie|Cookie|X-XSRF-TOKEN|XSRF-TOKEN|"
         r"Password|Passwd|SessionKey|sessionKey|Token|Secret")
_JSON_MEMBER = re.compile(r"""(["'](?:""" + _KEYS + r""")["']\s*:\s*)(["'])((?:\\.|(?!\2)[^\\])*)(\2)""",
                          re.IGNORECASE)
# The same member inside an escaped JSON string ({\"Password\": \"a\\\"b\"}): it ends at the first quote with
# exactly its own escaping (an inner quote carries more backslashes).
_ESCAPED_MEMBER = re.compile(r"""(\\+["'](?:""" + _KEYS + r""")\\+["']\s*:\s*)(\\+["'])(.*?)((?<!\\)\2)""",
                             re.IGNORECASE)
_HEADER_LINE = re.compile(r"((?:^|[\s{,;(\[])(?:" + _KEYS + r")\s*[:=]\s*)([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


class SecretBody(dict):
    """A request body holding a credential (the session login): pytest's long tracebacks print every frame's
    arguments with ``repr``, so its repr shows the keys only."""

    def __repr__(self) -> str:
        return repr(redact_structure(dict(self)))


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def redact_structure(value: Any) -> Any:
    """A copy of a JSON value / header dict with the values of secret-looking keys masked."""
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(k) and v not in (None, "") else redact_structure(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_structure(v) for v in value]
    return value


def secret_forms(secret: str) -> set[str]:
    """The spellings of ``secret`` that texts we produce or receive may carry (raw, JSON- and URL-escaped, HTML,
    latin-1-read UTF-8, JSON twice): what the redactor scrubs, and what a leak check looks for."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1],
             quote(secret, safe=""), quote_plus(secret, safe=""), html.escape(secret),
             html.escape(secret, quote=False)}
    try:
        forms.add(secret.encode("utf-8").decode("latin-1"))
    except UnicodeError:
        pass
    # The same escapes applied twice (a JSON body quoted inside another JSON string, e.g. an echoed request).
    forms.add(json.dumps(json.dumps(secret)[1:-1])[1:-1])
    return {f for f in forms if f}


class Redactor(logging.Filter):
    """Scrubs live secrets from texts and from log records; thread-safe, reference-counted per secret."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: dict[str, int] = {}
        self._forms: list[str] = []

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        with self._lock:
            self._secrets[secret] = self._secrets.get(secret, 0) + 1
            self._rebuild()

    def discard(self, secret: str | None) -> None:
        if not secret:
            return
        with self._lock:
            n = self._secrets.get(secret, 0) - 1
            if n <= 0:
                self._secrets.pop(secret, None)
            else:
                self._secrets[secret] = n
            self._rebuild()

    def _rebuild(self) -> None:
        forms: set[str] = set()
        for s in self._secrets:
            forms |= secret_forms(s)
        self._forms = sorted(forms, key=len, reverse=True)  # longest first: a form never leaves a tail

    def scrub(self, text: str) -> str:
        """``text`` with secret-looking fields masked and every live secret, in every form, replaced."""
        for member in (_JSON_MEMBER, _ESCAPED_MEMBER):
            text = member.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(4)}", text)
        text = _HEADER_LINE.sub(lambda m: f"{m.group(1)}{MASK}", text)
        with self._lock:
            forms = self._forms
        for f in forms:
            if f in text:
                text = text.replace(f, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken record is the logger's problem, not ours
            return True
        clean = self.scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # A traceback would print the exception's own text: keep the scrubbed message, drop the rest.
            record.msg = f"{record.msg} ({type(record.exc_info[1]).__name__}: {self.scrub(str(record.exc_info[1]))})"
            record.exc_info, record.exc_text = None, None
        return True


REDACTOR = Redactor()
# A logger's filters see only records made on that very logger, not its children's: name each one.
for _name in ("hilt.bmc", "urllib3", "urllib3.connectionpool", "urllib3.connection", "requests"):
    logging.getLogger(_name).addFilter(REDACTOR)
