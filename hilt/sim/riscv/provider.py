"""The rig provider of rig ``sim-riscv``: RISC-V QEMU guests behind sushy-emulator BMCs.

``start`` builds (or reuses from the cache) the kernel and the userland in this process, so a build error is
reported directly, then starts the RISC-V sim daemon detached, owned by this process, and returns its
generated rig; ``stop`` stops it (``hilt sim down <name>`` and the next start clean a crashed one).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hilt.sim.lifecycle import SimError, cleanup_stale, launch_daemon, runtime_state_dir, sim_down
from hilt.sim.provider import SimProvider, check_options
from hilt.sim.riscv.build import build_kernel, build_userland, default_cache_dir
from hilt.sim.riscv.daemon import PROFILE
from hilt.sim.riscv.image import STANDARD_IMAGES

_OPTIONS = {"nodes", "images", "boot_timeout_s", "power_delay_s", "memory_mb", "name", "cache_dir"}


def riscv_up(name: str = "sim-riscv", *, nodes: int = 2, images: list[str] | None = None,
             boot_timeout_s: float = 120.0, power_delay_s: float = 1.0, memory_mb: int = 256,
             state_dir: Path | None = None, owner_pid: int | None = None, cache_dir: Path | None = None,
             timeout_s: float = 120.0) -> dict[str, Any]:
    """Start RISC-V sim ``name``; returns its rig (``{"nodes": ..., "images": ...}``, the rigs.yaml shape)."""
    if not 1 <= nodes <= 16:
        raise SimError(f"sim-riscv nodes={nodes}: must be between 1 and 16 (each guest is a TCG QEMU)")
    cache = Path(cache_dir or default_cache_dir())
    build_kernel(cache)  # minutes the first time, then cached
    build_userland(cache)
    cleanup_stale(name)
    temporary = state_dir is None
    state_dir = Path(state_dir or runtime_state_dir(name)).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale_file in ("ready.json", "failed.json", "state.json"):
        (state_dir / stale_file).unlink(missing_ok=True)
    argv = [sys.executable, "-m", "hilt.sim.riscv.daemon", "--state-dir", str(state_dir), "--name", name,
            "--nodes", str(nodes), "--boot-timeout-s", str(boot_timeout_s), "--power-delay-s", str(power_delay_s),
            "--memory-mb", str(memory_mb), "--images", ",".join(images or []), "--cache-dir", str(cache)]
    if owner_pid:
        argv += ["--owner-pid", str(owner_pid)]
    if temporary:
        argv.append("--temporary")
    return launch_daemon(name, argv, state_dir, timeout_s)


riscv_down = sim_down  # the same record and cleanup: SIGTERM to the daemon, then what state.json lists


class RiscvSimProvider(SimProvider):
    """Like :class:`SimProvider` (whose ``stop`` and ``running`` it keeps), with QEMU guests as nodes."""

    def start(self, rig_name: str, options: dict[str, Any], workdir: Path) -> dict[str, Any]:
        name = check_options(rig_name, options, _OPTIONS)
        self._log_to = Path(workdir) / f"sim-{name}"
        rig = riscv_up(
            name, nodes=int(options.get("nodes", 2)), images=options.get("images"),
            boot_timeout_s=float(options.get("boot_timeout_s", 120.0)),
            power_delay_s=float(options.get("power_delay_s", 1.0)), memory_mb=int(options.get("memory_mb", 256)),
            owner_pid=os.getpid(),  # state in the runtime directory, removed at stop (never under reports/)
            cache_dir=Path(options["cache_dir"]).expanduser() if options.get("cache_dir") else None,
        )
        self.name = name  # only a sim this provider started is ever stopped by it
        return rig

    def planned(self, rig_name: str, options: dict[str, Any]) -> dict[str, Any]:
        """What ``start`` would provide, without starting (for `hilt rigs check`)."""
        check_options(rig_name, options, _OPTIONS)
        nodes = int(options.get("nodes", 2))
        return {"nodes": {f"node{i + 1}": PROFILE for i in range(nodes)},
                "images": list(options.get("images") or STANDARD_IMAGES)}
