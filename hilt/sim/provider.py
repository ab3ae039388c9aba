"""The rig provider that materialises rig ``sim``: start a sim daemon, hand back its generated rig."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hilt.errors import ConfigError
from hilt.sim.control import SimControl
from hilt.sim.lifecycle import sim_down, sim_up

_OPTIONS = {"nodes", "boot_delay_s", "power_delay_s", "images", "subnet", "profile", "boot_timeout_s", "name",
            "faults"}


def check_options(rig_name: str, options: dict[str, Any], allowed: set[str]) -> str:
    """Refuse unknown provider options (naming the valid ones); return the sim's name."""
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"rig {rig_name!r} provider options: unknown {unknown}; valid: {sorted(allowed)}")
    return str(options.get("name", rig_name))


class SimProvider:
    """``start`` returns ``{"nodes": ..., "images": ...}`` in rigs.yaml shape; ``stop`` removes the sim.

    ``stop`` and ``running`` work by name through the sims' shared registry, so any sim provider inherits them.
    """

    def __init__(self) -> None:
        self.name: str | None = None

    def start(self, rig_name: str, options: dict[str, Any], workdir: Path) -> dict[str, Any]:
        name = check_options(rig_name, options, _OPTIONS)
        state_dir = Path(workdir) / f"sim-{name}"
        rig = sim_up(
            name, nodes=int(options.get("nodes", 4)), boot_delay_s=float(options.get("boot_delay_s", 1.0)),
            power_delay_s=float(options.get("power_delay_s", 1.0)), images=options.get("images"),
            subnet=int(options.get("subnet", 0)), state_dir=state_dir, owner_pid=os.getpid(),
            profile=str(options.get("profile", "sim-4gpu")),
            boot_timeout_s=float(options.get("boot_timeout_s", 30.0)),
        )
        self.name = name  # only a sim this provider started is ever stopped by it
        for node, fault in dict(options.get("faults") or {}).items():
            # faults from the start, for sessions where one node misbehaves (e.g. {node1: never_boot})
            spec = fault if isinstance(fault, dict) else {"fault": fault}
            SimControl(state_dir).set_fault(node, spec["fault"], **{k: v for k, v in spec.items() if k != "fault"})
        return rig

    def running(self, rig_name: str, options: dict[str, Any]) -> dict[str, Any] | None:
        """The rig of a sim already up under this rig's name (`hilt sim up`), for `hilt rigs`; else None."""
        from hilt.sim import state

        name = str(options.get("name", rig_name))
        existing = state.lookup(name)
        if existing is None or state.is_stale(existing):
            return None
        ready = state.read_json(Path(existing["state_dir"]) / "ready.json")
        return ready["rig"] if ready else None

    def stop(self) -> None:
        if self.name is not None:
            sim_down(self.name)
            self.name = None
