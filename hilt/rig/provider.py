"""Rig providers: a rig whose nodes exist only while something runs them (a simulated rack, a cloud allocation).

rigs.yaml names the provider (``provider.factory: module:Class``); the engine loads it, asks it to start, and
merges the nodes and images it hands back into the inventory, validated like the file. Nothing in the engine
knows more of a provider than :class:`RigProvider`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from hilt.errors import ConfigError
from hilt.rig.config import Inventory, ProviderConfig


class RigProvider(Protocol):
    """Materialises a rig's nodes before a session (and tears them down after).

    ``start`` and ``running`` return the rig in rigs.yaml shape: ``{"nodes": {...}, "images": {...}}``.
    """

    def start(self, rig_name: str, options: dict, workdir: Path) -> dict: ...

    def stop(self) -> None: ...

    def running(self, rig_name: str, options: dict) -> dict | None:
        """The rig as it runs now (started by someone else, e.g. `hilt sim up`), or None when it does not run.

        `hilt rigs` shows its live nodes and `hilt rollout`, which never starts a rig that would stop with it,
        works on them."""
        ...


def load_provider(config: ProviderConfig) -> RigProvider:
    module_name, _, attr = config.factory.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr or "Provider")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"rig provider {config.factory!r} cannot be loaded: {exc}") from None
    return factory()


def materialize(inv: Inventory, rig_name: str, provided: Mapping[str, Any]) -> Inventory:
    """The inventory with a provider's nodes and images merged into the rig, validated like the file."""
    data = inv.model_dump(mode="python", exclude={"source"})
    data["source"] = inv.source
    rig = data["rigs"][rig_name]
    rig["nodes"] = {**rig.get("nodes", {}), **provided.get("nodes", {})}
    data["images"] = {**data.get("images", {}), **provided.get("images", {})}
    for node in rig["nodes"].values():
        bmc = node["bmc"]
        for field in ("username", "password"):
            value = str(bmc[field])
            bmc[field] = value[len("literal:"):] if value.startswith("literal:") else value
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"rig {rig_name!r} from its provider is invalid: {exc}") from None


def running_rig(inventory: Inventory, rig_name: str) -> Inventory | None:
    """The inventory as rig ``rig_name`` is right now: as it is for a rig with static nodes, with the live nodes
    and images merged in for a provided rig that runs (`hilt sim up`, a session's sim), None for a provided rig
    that does not run. Starts nothing."""
    rig = inventory.rig(rig_name)
    if rig.provider is None:
        return inventory
    live = load_provider(rig.provider).running(rig_name, dict(rig.provider.options))
    return materialize(inventory, rig_name, live) if live else None
