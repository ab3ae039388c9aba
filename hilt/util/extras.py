"""hilt's optional parts and the extra that installs each, so a missing one is a one-line error naming it.

The core install is what a CI gate needs (pytest plugin, rigs, leases in sqlite, BMCs, nodes, gate, summary);
the simulated rack, the probes' torch, etcd leases and change-point reports are extras (pyproject.toml).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hilt.errors import ConfigError


class MissingExtra(ConfigError):
    """A command needs an optional part of hilt that is not installed."""


def require(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import ``module``, or raise MissingExtra saying which ``hilt[extra]`` provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{needed_for} needs hilt's {extra!r} extra ({exc.name or module} is not installed): "
                           f"pip install 'hilt[{extra}]'") from None
