"""Under which lease a sim's nodes are booted by hand: the rig of rigs.yaml that uses the sim, in its lease store.

`hilt sim up --image` reboots the sim's nodes. A `hilt run` or `hilt rollout` on the rig that uses this sim leases
them as ``RIG/NODE`` in the store that ``--lease-store``, ``$HILT_LEASE_STORE`` or rigs.yaml names, so the boot
takes that same lease, found the same way: neither then reboots nodes under the other. Only the public lease API
is used (hilt.lease); the engine knows nothing of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hilt.errors import ConfigError
from hilt.rig.config import Inventory, load_inventory
from hilt.util.locations import default_lease_store_url

DEFAULT_RIGS = Path("rigs.yaml")


@dataclass(frozen=True)
class LeaseTarget:
    """The rig whose ``RIG/NODE`` keys are leased, and the store (a URL) they are leased in."""

    rig: str
    store_url: str


def lease_target(sim: str, *, rigs_file: Path | None = None, rig: str | None = None,
                 store_url: str | None = None) -> LeaseTarget:
    """The lease a boot of sim ``sim`` takes. ``rigs_file``: given (option or $HILT_RIGS) it must load; not given,
    ./rigs.yaml is read where there is one. ``rig``: the rig named (it must be in the file, if any), else the rig
    whose sim provider runs this sim (rigs.yaml's ``default_rig`` first), else the sim's name. ``store_url``: given,
    it wins over rigs.yaml's ``lease_store``; without either, the default store (the state directory)."""
    inventory = _inventory(rigs_file)
    if inventory is None:
        return LeaseTarget(rig=rig or sim, store_url=store_url or default_lease_store_url())
    if rig is not None:
        inventory.rig(rig)  # an unknown rig is refused, naming the known ones
    return LeaseTarget(rig=rig or _rig_of_sim(inventory, sim) or sim, store_url=store_url or inventory.lease_store)


def _inventory(rigs_file: Path | None) -> Inventory | None:
    if rigs_file is None:
        return load_inventory(DEFAULT_RIGS) if DEFAULT_RIGS.is_file() else None
    if not Path(rigs_file).is_file():
        raise ConfigError(f"{rigs_file}: no such rigs file (--rigs-file or $HILT_RIGS)")
    return load_inventory(rigs_file)


def _rig_of_sim(inventory: Inventory, sim: str) -> str | None:
    """The rig whose provider is a sim of this name (``options.name``, else the rig's own name)."""
    users = [name for name, cfg in inventory.rigs.items()
             if cfg.provider is not None and cfg.provider.factory.startswith("hilt.sim.")
             and str(cfg.provider.options.get("name", name)) == sim]
    if inventory.default_rig in users:
        return inventory.default_rig
    return users[0] if users else None
