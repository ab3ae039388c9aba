"""The rig provider that materialises rig ``sim``: start a sim daemon, hand back its generated rig."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from hilt.errors import ConfigError
from hilt.profiles.model import load_profile
from hilt.sim import state
from hilt.sim.control import SimControl
from hilt.sim.identity import swap_bmcs
from hilt.sim.image import STANDARD_IMAGES
from hilt.sim.lifecycle import sim_down, sim_up

_OPTIONS = {"nodes", "boot_delay_s", "power_delay_s", "images", "subnet", "profile", "boot_timeout_s", "name",
            "faults", "swap_bmcs"}


def check_options(rig_name: str, options: dict[str, Any], allowed: set[str]) -> str:
    """Refuse unknown provider options (naming the valid ones); return the sim's name."""
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"rig {rig_name!r} provider options: unknown {unknown}; valid: {sorted(allowed)}")
    return str(options.get("name", rig_name))


_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$")
_NODE_KEYS = {"name", "profile"}


def node_specs(rig_name: str, options: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, profile) of each node: ``nodes: 4`` (node1..node4 of the rig-wide ``profile``) or an explicit list
    ``nodes: [{name: gpu-01, profile: hgx-h100-8gpu}, ...]`` (a node without ``profile`` takes the rig-wide one).

    Real-rack shapes: hyphenated and dotted names, several platforms in one rig.
    """
    where = f"rig {rig_name!r} provider options"
    default = str(options.get("profile", "sim-4gpu"))
    raw = options.get("nodes", 4)
    if isinstance(raw, bool) or not isinstance(raw, int | list):
        raise ConfigError(f"{where}: nodes: expected a count or a list of {{name, profile}}, got {raw!r}")
    if isinstance(raw, int):
        specs = [(f"node{i + 1}", default) for i in range(raw)]
    else:
        specs = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or "name" not in item or set(item) - _NODE_KEYS:
                raise ConfigError(f"{where}: nodes[{i}]: expected {{name: ..., profile: ...}} "
                                  f"(keys {sorted(_NODE_KEYS)}), got {item!r}")
            specs.append((str(item["name"]), str(item.get("profile", default))))
    if not 1 <= len(specs) <= 250:
        raise ConfigError(f"{where}: nodes: between 1 and 250 nodes, got {len(specs)}")
    seen: set[str] = set()
    for name, profile in specs:
        if not _NODE_NAME.match(name):
            raise ConfigError(f"{where}: nodes: {name!r} is not a node name for the sim (letters, digits, '.', "
                              "'_', '-'; up to 41 characters, starting with a letter or digit)")
        if name in seen:
            raise ConfigError(f"{where}: nodes: {name!r} appears twice")
        seen.add(name)
        load_profile(profile)  # unknown or invalid profiles are refused here, naming the profile
    return specs


class SimProvider:
    """``start`` returns ``{"nodes": ..., "images": ...}`` in rigs.yaml shape; ``stop`` removes the sim.

    ``stop`` and ``running`` work by name through the sims' shared registry, so any sim provider inherits them.
    """

    def __init__(self) -> None:
        self.name: str | None = None
        self.state_dir: Path | None = None  # the running sim's state, in the runtime directory
        self._log_to: Path | None = None

    def start(self, rig_name: str, options: dict[str, Any], workdir: Path) -> dict[str, Any]:
        """Start the sim. Its state (and secrets) go to the runtime directory, removed when it stops; only
        its log is copied to ``workdir`` (under reports/) at stop, for a person reading a failed run.

        A sim of this name that `hilt sim up` started is used as it runs, and left running (``stop`` stops only
        a sim this provider started): that is how `hilt run` and `pytest --rig sim` share the rack that
        `hilt rollout` works on (docs/rollout.md). The lease keeps them from using one node at once."""
        name = check_options(rig_name, options, _OPTIONS)
        specs = node_specs(rig_name, options)
        running = self._started_by_hand(rig_name, name, options)
        if running is not None:
            return running
        self._log_to = Path(workdir) / f"sim-{name}"
        rig = sim_up(
            name, nodes=len(specs), node_specs=specs, boot_delay_s=float(options.get("boot_delay_s", 1.0)),
            power_delay_s=float(options.get("power_delay_s", 1.0)), images=options.get("images"),
            subnet=int(options.get("subnet", 0)), owner_pid=os.getpid(),
            profile=str(options.get("profile", "sim-4gpu")),
            boot_timeout_s=float(options.get("boot_timeout_s", 30.0)),
        )
        self.name = name  # only a sim this provider started is ever stopped by it
        if options.get("swap_bmcs"):
            swap_bmcs(rig, list(options["swap_bmcs"]))
        state_dir = self.state_dir = Path(state.lookup(name)["state_dir"])
        for node, fault in dict(options.get("faults") or {}).items():
            # faults from the start, for sessions where one node misbehaves (e.g. {node1: never_boot})
            spec = fault if isinstance(fault, dict) else {"fault": fault}
            SimControl(state_dir).set_fault(node, spec["fault"], **{k: v for k, v in spec.items() if k != "fault"})
        return rig

    def _started_by_hand(self, rig_name: str, name: str, options: dict[str, Any]) -> dict[str, Any] | None:
        """The rig of sim ``name`` when `hilt sim up` started it and it is ready; None when none runs (a sim
        another run started, which stops with that run, is left to ``sim_up`` to refuse)."""
        existing = state.lookup(name)
        if existing is None or state.is_stale(existing) or existing.get("owner_pid"):
            return None
        rig = self.running(rig_name, options)
        if rig is None:
            return None
        shaped = sorted(set(options) & {"faults", "swap_bmcs"})
        if shaped:
            raise ConfigError(f"rig {rig_name!r} provider options {shaped} shape a sim as it starts, and sim {name!r} "
                              f"is running already (`hilt sim up`): stop it (`hilt sim down --name {name}`) or "
                              "give this rig another sim name (options.name)")
        return rig

    def planned(self, rig_name: str, options: dict[str, Any]) -> dict[str, Any]:
        """What ``start`` would provide, without starting: ``{"nodes": {name: profile}, "images": [names]}``;
        a sim that runs already (`hilt sim up`) has its own nodes."""
        check_options(rig_name, options, _OPTIONS)
        live = self.running(rig_name, options)
        if live is not None:
            return {"nodes": {n: cfg.get("profile") for n, cfg in live["nodes"].items()},
                    "images": list(live.get("images") or {})}
        images = options.get("images") or list(STANDARD_IMAGES)
        return {"nodes": dict(node_specs(rig_name, options)), "images": list(images)}

    def running(self, rig_name: str, options: dict[str, Any]) -> dict[str, Any] | None:
        """The rig of a sim already up under this rig's name (`hilt sim up`), for `hilt rigs`; else None."""
        name = str(options.get("name", rig_name))
        existing = state.lookup(name)
        if existing is None or state.is_stale(existing):
            return None
        ready = state.read_json(Path(existing["state_dir"]) / "ready.json")
        return ready["rig"] if ready else None

    def stop(self) -> None:
        if self.name is not None:
            try:
                self._keep_log()  # a full reports disk must not keep the rack up
            finally:
                sim_down(self.name)
                self.name = None

    def _keep_log(self) -> None:
        """The daemon's log (no secrets: it names files, never their contents) outlives the runtime state."""
        existing = state.lookup(self.name) if self.name else None
        if existing is None or self._log_to is None:
            return
        log = Path(existing["state_dir"]) / "daemon.log"
        if log.is_file():
            self._log_to.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, self._log_to / "daemon.log")
