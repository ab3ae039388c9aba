"""The on-disk record of a running sim, and the cleanup that works from it alone.

The daemon writes every resource into ``state.json`` *before* creating it, and a pointer file under
/run/hilt/sims/<name>.json says where the state directory is. So a sim whose daemon or owner died can be
found and removed by the next start or by ``hilt sim down``, without guessing by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from hilt.sim import netns
from hilt.util.processes import pid_alive

REGISTRY = Path(os.environ.get("HILT_SIM_REGISTRY", "/run/hilt/sims"))


def pid_start_time(pid: int) -> str | None:
    """The kernel's start time of a process: guards a kill against a reused PID."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def registry_path(name: str) -> Path:
    return REGISTRY / f"{name}.json"


def register(name: str, state_dir: Path) -> None:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    write_json(registry_path(name), {"name": name, "state_dir": str(state_dir)})


def lookup(name: str) -> dict[str, Any] | None:
    """The state of sim ``name`` from its registry pointer, or None when there is none."""
    pointer = read_json(registry_path(name))
    if not pointer:
        return None
    state = read_json(Path(pointer["state_dir"]) / "state.json")
    return state or {"name": name, "state_dir": pointer["state_dir"], "daemon_pid": None}


def is_stale(state: dict[str, Any]) -> bool:
    """A sim whose daemon died, or whose owning session died (a crashed run), is stale."""
    if not pid_alive(state.get("daemon_pid")):
        return True
    owner = state.get("owner_pid")
    return bool(owner) and not pid_alive(owner)


def kill_pid(pid: int, start_time: str | None, sig: int = signal.SIGKILL) -> None:
    if start_time is not None and pid_start_time(pid) != start_time:
        return  # the PID now belongs to someone else
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def cleanup(state: dict[str, Any], remove_state_dir: bool | None = None) -> list[str]:
    """Remove every resource ``state`` records; idempotent. Returns what was removed, for the log."""
    removed: list[str] = []
    daemon = state.get("daemon_pid")
    if daemon and daemon != os.getpid() and pid_alive(daemon):
        kill_pid(daemon, state.get("daemon_start"), signal.SIGKILL)
        removed.append(f"daemon pid {daemon}")
    for pid_s, start in (state.get("pids") or {}).items():
        pid = int(pid_s)
        if pid_alive(pid):
            kill_pid(pid, start)
            removed.append(f"pid {pid}")
    sim = state.get("name", "")
    present = set(netns.list_namespaces("hilt-"))
    namespaces = set(state.get("namespaces") or []) & present
    if sim:
        namespaces |= {ns for ns in present if ns.startswith(f"hilt-{sim}-")}
    for ns in sorted(namespaces):
        for pid in netns.namespace_pids(ns):
            kill_pid(pid, None)
        netns.delete_namespace(ns)
        removed.append(f"netns {ns}")
    for link in [*(state.get("veths") or []), *([state["bridge"]] if state.get("bridge") else [])]:
        if netns.link_exists(link):
            netns.delete_link(link)
            removed.append(f"link {link}")
    state_dir = state.get("state_dir")
    if remove_state_dir is None:
        remove_state_dir = bool(state.get("temporary_state_dir"))
    if state_dir and remove_state_dir and Path(state_dir).exists():
        _rmtree_patiently(Path(state_dir))
        removed.append(f"dir {state_dir}")
    elif state_dir:
        for secret in ("secrets", "keys"):
            shutil.rmtree(Path(state_dir) / secret, ignore_errors=True)
    if sim:
        pointer = read_json(registry_path(sim))
        if pointer and pointer.get("state_dir") == state_dir:
            registry_path(sim).unlink(missing_ok=True)
    return removed


def _rmtree_patiently(path: Path) -> None:
    for _ in range(10):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.2)
