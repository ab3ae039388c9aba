"""Start, stop and inspect a sim: what ``hilt sim up|down|status`` and the sim provider call.

The daemon runs detached (its own session), so a sim started by ``hilt sim up`` outlives the command;
one started for a pytest session names that session as its owner and goes away with it even on a crash.
A sim whose daemon or owner is dead is stale: the next ``sim_up`` of that name, or ``sim_down``, removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hilt.errors import HiltError
from hilt.sim import state
from hilt.sim.control import SimControl
from hilt.util.extras import require
from hilt.util.locations import runtime_dir
from hilt.util.processes import pid_alive


class SimError(HiltError):
    """The simulated rack could not be started, stopped or reached."""


def cleanup_stale(name: str) -> list[str]:
    """Remove every resource a stale sim ``name`` recorded (its daemon or owning run died), so that a new one can
    take the name; refuse when that sim still runs. Shared by the rack and the RISC-V rack
    (hilt.sim.riscv.provider). Returns what was removed, for the log."""
    existing = state.lookup(name)
    if existing is None:
        return []
    if not state.is_stale(existing):
        raise SimError(f"sim {name!r} is already running (daemon pid {existing.get('daemon_pid')}, "
                       f"state {existing.get('state_dir')}); stop it with `hilt sim down {name}`")
    return state.cleanup(existing)


def runtime_state_dir(name: str) -> Path:
    """A fresh state directory for sim ``name`` in the runtime directory (hilt.util.locations.runtime_dir, 0700).

    The state holds the sim's secrets: the nodes' SSH host private keys, the client key, the BMC password and
    htpasswd, the BMCs' TLS key. It lives here, never under reports/ (which CI uploads), and is removed when the
    sim stops (a sim started with this directory is ``temporary``).
    """
    return Path(tempfile.mkdtemp(prefix=f"sim-{name}-", dir=runtime_dir()))


def sim_up(name: str = "sim", *, nodes: int = 4, boot_delay_s: float = 1.0, power_delay_s: float = 1.0,
           images: list[str] | None = None, subnet: int = 0, state_dir: Path | None = None,
           owner_pid: int | None = None, profile: str = "sim-4gpu", boot_timeout_s: float = 30.0,
           timeout_s: float = 90.0, node_specs: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Start sim ``name`` and return its rig (``{"nodes": ..., "images": ...}``, the rigs.yaml shape).

    Cleans a stale sim of the same name first. ``owner_pid``: the sim stops when that process dies.
    """
    require("sushy_tools", "sim", "the simulated rack")
    if os.geteuid() != 0:
        raise SimError("the simulated rack needs root (network and mount namespaces, bridges): run as root")
    if node_specs:
        nodes = len(node_specs)
    if not 1 <= nodes <= 250:
        raise SimError(f"sim nodes={nodes}: must be between 1 and 250")
    cleanup_stale(name)
    temporary = state_dir is None
    state_dir = Path(state_dir or runtime_state_dir(name)).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale_file in ("ready.json", "failed.json", "state.json"):
        (state_dir / stale_file).unlink(missing_ok=True)
    argv = [sys.executable, "-m", "hilt.sim.daemon", "--state-dir", str(state_dir), "--name", name,
            "--nodes", str(nodes), "--subnet", str(subnet), "--boot-delay-s", str(boot_delay_s),
            "--power-delay-s", str(power_delay_s), "--boot-timeout-s", str(boot_timeout_s),
            "--profile", profile, "--images", ",".join(images or [])]
    if node_specs:
        argv += ["--node-specs", json.dumps([list(spec) for spec in node_specs])]
    if owner_pid:
        argv += ["--owner-pid", str(owner_pid)]
    if temporary:
        argv.append("--temporary")
    return launch_daemon(name, argv, state_dir, timeout_s)


def launch_daemon(name: str, argv: list[str], state_dir: Path, timeout_s: float) -> dict[str, Any]:
    """Start a sim daemon detached and wait for its ready.json (its rig) or failed.json (its reason)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with (state_dir / "daemon.log").open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, cwd="/")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready = state.read_json(state_dir / "ready.json")
        if ready:
            return ready["rig"]
        failed = state.read_json(state_dir / "failed.json")
        if failed or proc.poll() is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            why = (failed or {}).get("error") or f"daemon exited with {proc.returncode}"
            raise SimError(f"sim {name!r} did not start: {why} (log: {state_dir / 'daemon.log'})")
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(20)
    leftover = state.read_json(state_dir / "state.json")
    if leftover:
        state.cleanup(leftover)
    raise SimError(f"sim {name!r} not ready after {timeout_s:.0f}s (log: {state_dir / 'daemon.log'})")


def sim_down(name: str = "sim", timeout_s: float = 30.0) -> list[str]:
    """Stop sim ``name`` (SIGTERM to its daemon, then a cleanup pass); returns what was removed."""
    existing = state.lookup(name)
    if existing is None:
        return []
    pid = existing.get("daemon_pid")
    removed: list[str] = []
    if pid and pid_alive(pid) and state.pid_start_time(pid) == existing.get("daemon_start"):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        removed.append(f"daemon pid {pid}")
    # whatever the daemon did not get to (it was killed, or it crashed) goes now
    after = state.read_json(Path(existing["state_dir"]) / "state.json") or existing
    removed += state.cleanup(after)
    return removed


def sim_status(name: str | None = None) -> dict[str, dict[str, Any]]:
    """Every registered sim (or ``name``): alive or stale, and the live node status when alive."""
    names = [name] if name else sorted(p.stem for p in state.REGISTRY.glob("*.json"))
    out: dict[str, dict[str, Any]] = {}
    for n in names:
        existing = state.lookup(n)
        if existing is None:
            continue
        info: dict[str, Any] = {"state_dir": existing.get("state_dir"), "daemon_pid": existing.get("daemon_pid"),
                                "owner_pid": existing.get("owner_pid"), "stale": state.is_stale(existing)}
        if not info["stale"] and existing.get("ready"):
            with contextlib.suppress(SimError):
                info.update(SimControl(existing["state_dir"]).status())
        out[n] = info
    return out
