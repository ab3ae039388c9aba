"""Credentials in rigs.yaml: references (``${ENV_VAR}`` or ``file:/path``) that are resolved only at use.

A credential is never written in the file, so what the schema holds, logs and errors show is where the value
lives, never the value. The rest of the schema is hilt/rig/config.py; the check that every reference can be
resolved now (`hilt rigs check`) is hilt/rig/check.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic_core import core_schema

from hilt.errors import ConfigError

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class Secret(str):
    """A credential reference: ``${ENV_VAR}`` or ``file:/path``. Its value is read only at use.

    ``str(secret)`` is the reference, never the value, so a secret that ends up in a log or an
    exception shows where the value lives, not what it is.
    """

    def resolve(self) -> str:
        ref = str(self)
        match = _ENV_REF.match(ref)
        if match:
            value = os.environ.get(match.group(1))
            if value is None:
                raise ConfigError(f"credential {ref} is not set: export {match.group(1)}")
            return value
        if ref.startswith("file:"):
            return _first_line(ref, Path(ref[5:]).expanduser())
        raise ConfigError(f"credential {ref!r} is not a reference (use ${{ENV_VAR}} or file:/path)")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        return core_schema.no_info_after_validator_function(cls, core_schema.str_schema())

    def problem(self) -> str | None:
        """Why this reference cannot be resolved now, or None when it can."""
        try:
            self.resolve()
        except ConfigError as exc:
            return str(exc)
        return None


def _first_line(ref: str, path: Path) -> str:
    """The first line of a credential file, as documented: a trailing comment, a second secret or a
    newline after it never become part of the password. Messages name the reference, never the content."""
    try:
        with path.open("rb") as f:
            raw = f.readline(64 * 1024)
    except OSError as exc:
        raise ConfigError(f"credential {ref} cannot be read: {exc.strerror or exc}") from None
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ConfigError(f"credential {ref}: its first line is not UTF-8 text") from None
    if not line.strip():
        raise ConfigError(f"credential {ref}: its first line is empty (the value goes on line 1)")
    return line


def reference(value: object, field: str) -> Secret:
    """``value`` as a Secret, or the ValueError a rigs.yaml validator turns into "file:line: field: why"."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string reference")
    if is_reference(value):
        return Secret(value)
    raise ValueError(
        "credentials are never written in rigs.yaml: use a reference like ${BMC_PASSWORD} or file:/path"
    )


def is_reference(text: str) -> bool:
    """Whether ``text`` is a credential reference (``${ENV_VAR}`` or ``file:/path``), not a value."""
    return bool(_ENV_REF.match(text)) or text.startswith("file:")


def resolve_username(secret: Secret) -> str:
    """A BMC user name: written as it is in rigs.yaml (kept as ``literal:NAME``) or a reference."""
    text = str(secret)
    return text[len("literal:"):] if text.startswith("literal:") else secret.resolve()
