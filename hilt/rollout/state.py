"""A rollout's plan and progress, on disk before every step, so that a crashed controller can be resumed.

Where: ``$HILT_ROLLOUTS/<ID>/state.json``, else ``<state dir>/rollouts/<ID>/state.json`` (hilt.util.locations: the
directory that also keeps the lease store). Not under ``reports/``: clean-up steps delete that, and a rollout
whose state is gone can neither be resumed nor rolled back. Each write goes to a temporary file that replaces the
old one (after fsync), so a controller killed mid-write leaves the previous state, never half of one.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from hilt.errors import ConfigError
from hilt.util.locations import state_dir

SCHEMA_VERSION = 1
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", re.ASCII)  # fullmatch: `$` would let "id\n" through

NodeStatus = Literal["old", "booting", "new", "rolling_back", "rolled_back", "rollback_failed"]
WaveStatus = Literal["pending", "booting", "gating", "passed", "regression", "inconclusive"]
RolloutStatus = Literal["running", "passed", "regression", "inconclusive", "aborted"]
FINISHED: tuple[str, ...] = ("passed", "regression", "inconclusive", "aborted")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_rollout_id() -> str:
    return "ro-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def rollouts_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$HILT_ROLLOUTS``, else ``rollouts/`` in hilt's state directory (hilt.util.locations.state_dir)."""
    env = os.environ if env is None else env
    if env.get("HILT_ROLLOUTS"):
        return Path(env["HILT_ROLLOUTS"])
    return state_dir(env) / "rollouts"


def check_id(rollout_id: str) -> str:
    """A rollout id names a directory: no slashes, no dots in front (nothing outside the rollouts dir)."""
    if not _ID.fullmatch(rollout_id):
        raise ConfigError(f"rollout id {rollout_id!r}: expected letters, digits, '.', '_', '-' "
                          "(as `hilt rollout` printed it, e.g. ro-20260301T020000-1a2b3c)")
    return rollout_id


class NodeImage(BaseModel):
    """What a node ran when it was read: the image's rigs.yaml name (None: no image of rigs.yaml has that
    identity) and the identity and boot id the node showed."""

    image: str | None = None
    image_id: str | None = None
    boot_id: str | None = None
    kernel: str | None = None
    driver: str | None = None


class RolloutNode(BaseModel):
    name: str
    wave: int
    before: NodeImage
    rollback_image: str | None = None  # what a rollback boots on this node (None: it cannot be rolled back)
    rollback_from: str | None = None  # where rollback_image came from: "running at start", "history", "--rollback-to"
    status: NodeStatus = "old"
    new_boot_id: str | None = None
    boot_id_at_rollback: str | None = None  # the boot id it ran as its rollback started (None: it answered nothing)
    rollback_boot_id: str | None = None
    rollback_proof: str | None = None  # the rollback verified as a boot: boot ids, image id, identity
    error: str | None = None


class Check(BaseModel):
    """One judgement of one gated metric on one node of the wave."""

    metric: str  # the series key: name{labels}
    node: str
    against: Literal["baseline", "control"]
    outcome: str
    reason: str
    ratio: float | None = None  # measured / baseline, or canary / control


class Wave(BaseModel):
    index: int
    nodes: list[str]
    control: list[str]
    status: WaveStatus = "pending"
    run_id: str | None = None  # the last gate run (look) of the wave
    runs: list[str] = Field(default_factory=list)  # every look's run id
    reports: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    checks: list[Check] = Field(default_factory=list)
    reason: str | None = None

    @property
    def name(self) -> str:
        return "canary" if self.index == 1 else f"wave {self.index}"


class Rollback(BaseModel):
    why: str
    outcome: RolloutStatus  # how the rollout ends once the rollback is done
    exit_code: int
    started_at: str
    finished_at: str | None = None
    nodes: list[str] = Field(default_factory=list)
    ok: bool | None = None  # None while it runs


class Event(BaseModel):
    at: str
    what: str


class Controller(BaseModel):
    host: str
    pid: int = Field(gt=0, lt=2**31)  # a pid_t: -1 or 0 read as "alive" (kill(-1, 0)), 10**20 overflowed kill()


class RolloutState(BaseModel):
    schema_version: int = SCHEMA_VERSION
    id: str
    rig: str
    image: str
    image_config: dict[str, Any]
    rigs_file: str
    canary: str
    waves_option: str
    rollback_to: str | None = None  # None: the image each node ran at the start; "previous": the history's
    on_inconclusive: Literal["stop", "rollback"] = "stop"
    reports_dir: str
    lease_store: str | None = None
    lease_ttl_s: float = 60.0
    lease_wait_s: float = 0.0
    lease_id: str | None = None
    suites: str | None = None
    pytest_args: list[str] = Field(default_factory=list)
    created_at: str
    updated_at: str | None = None
    controller: Controller | None = None
    status: RolloutStatus = "running"
    exit_code: int | None = None
    reason: str | None = None
    nodes: dict[str, RolloutNode] = Field(default_factory=dict)
    waves: list[Wave] = Field(default_factory=list)
    rollback: Rollback | None = None
    events: list[Event] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def event(self, what: str) -> None:
        self.events.append(Event(at=utc_now(), what=what))

    def nodes_on_new(self) -> list[str]:
        """Nodes that got the new image or may have (a boot that was started counts: a rollback must cover it)."""
        return [n.name for n in self.nodes.values() if n.status in ("booting", "new", "rolling_back",
                                                                    "rollback_failed")]


def _inconsistency(state: RolloutState) -> str | None:
    """What makes a loaded state one that no plan produced (``field: what``), or None: the engine indexes
    ``nodes`` by the waves' and the rollback's node names, so a hand-edited file would fail mid-resume."""
    for key, node in state.nodes.items():
        if node.name != key:
            return f"nodes.{key}.name: {node.name!r}, expected {key!r}"
    for position, wave in enumerate(state.waves, start=1):
        if wave.index != position:
            return f"waves.{position - 1}.index: {wave.index}, expected {position} (waves in order from 1)"
        for field in ("nodes", "control"):
            unknown = [n for n in getattr(wave, field) if n not in state.nodes]
            if unknown:
                return f"waves.{position - 1}.{field}: {unknown[0]!r} is not in nodes"
        for name in wave.nodes:
            if state.nodes[name].wave != wave.index:
                return f"nodes.{name}.wave: {state.nodes[name].wave}, but waves.{position - 1} (wave {wave.index}) " \
                       "holds it"
    placed = {n for w in state.waves for n in w.nodes}
    for name in state.nodes:
        if name not in placed:
            return f"nodes.{name}: in no wave's nodes"
    if state.rollback is not None:
        unknown = [n for n in state.rollback.nodes if n not in state.nodes]
        if unknown:
            return f"rollback.nodes: {unknown[0]!r} is not in nodes"
    return None


def _no_constant(name: str) -> float:
    """json.loads would read ``NaN``/``Infinity``: a NaN lease TTL then reaches the lease store as NULL."""
    raise ValueError(f"{name}: not valid JSON (JSON numbers are finite; hilt never writes {name})")


class StateStore:
    """The rollouts directory: one subdirectory per rollout, holding its state.json."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else rollouts_dir()

    def directory(self, rollout_id: str) -> Path:
        return self.root / check_id(rollout_id)

    def path(self, rollout_id: str) -> Path:
        return self.directory(rollout_id) / "state.json"

    def claim(self, rollout_id: str) -> IO[str]:
        """One controller per rollout: an exclusive lock on the rollout's directory, held while the returned file
        stays open (the process's life). Two `resume`s started at once would otherwise both see the old
        controller dead and walk the waves from the same state."""
        directory = self.directory(rollout_id)
        directory.mkdir(parents=True, exist_ok=True)
        lock = directory / "controller.lock"
        handle = lock.open("a", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ConfigError(f"rollout {rollout_id} is being run by another hilt process on this host ({lock} is "
                              "locked); wait for it to end or stop it, then resume") from None
        return handle

    def save(self, state: RolloutState) -> Path:
        """Atomically replace the state file (write, fsync, rename, fsync the directory)."""
        state.updated_at = utc_now()
        directory = self.directory(state.id)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "state.json"
        tmp = directory / f".state.json.{os.getpid()}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(state.model_dump_json(indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    def load(self, rollout_id: str) -> RolloutState:
        """The state of ``rollout_id``; a missing, unreadable or damaged file is one ConfigError naming the file,
        the field and what is wrong (a resume on a half-understood state could boot the wrong nodes)."""
        path = self.path(rollout_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            known = ", ".join(self.ids()[-5:]) or "none"
            raise ConfigError(f"{path}: no rollout {rollout_id!r} in {self.root} (recent: {known}; "
                              "set HILT_ROLLOUTS if it ran with another rollouts directory)") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: byte {exc.start}: not UTF-8 text; a rollout state file is the JSON "
                              "hilt wrote") from None
        except OSError as exc:  # a directory in its place, no permission, a file where the rollouts dir should be
            raise ConfigError(f"{path}: cannot read the rollout state ({exc.strerror or exc})") from None
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: line {exc.lineno}: not JSON ({exc.msg})") from None
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{path}: nested too deep to be a rollout state file") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: (top level): expected a JSON object (a rollout state), "
                              f"got {type(data).__name__}")
        version = data.get("schema_version")
        if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
            raise ConfigError(f"{path}: schema_version: {version} is newer than this hilt reads ({SCHEMA_VERSION});"
                              " use the hilt that started the rollout")
        try:
            state = RolloutState.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise ConfigError(f"{path}: {where}: {first['msg']} (a rollout state file written by hilt "
                              f"schema {SCHEMA_VERSION})") from None
        if (wrong := _inconsistency(state)) is not None:
            raise ConfigError(f"{path}: {wrong} (a rollout state file written by hilt schema {SCHEMA_VERSION})")
        if state.id != rollout_id:  # resume and abort save by state.id: they would write another rollout's state
            raise ConfigError(f"{path}: id: {state.id!r} is not {rollout_id!r}, the rollout whose directory holds "
                              "it; a state file lives in rollouts/<its id>/")
        return state

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "state.json").is_file())
