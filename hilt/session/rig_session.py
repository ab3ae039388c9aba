"""One run's hold on a rig: materialise it, lease its nodes, boot them, and give them back.

The controlling pytest process (the xdist controller, or the only process) owns the session; workers
read its state file. That is what makes "boot each node once per session" true under ``pytest -n``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from hilt.bmc import Bmc
from hilt.errors import ConfigError, HiltError, LeaseError
from hilt.lease.hold import SICK, LeaseHold
from hilt.lease.model import HealthState, Waiting
from hilt.provision.boot import ProgressCallback, ProvisionResult, provision
from hilt.rig.config import ImageConfig, Inventory, NodeConfig, load_inventory
from hilt.rig.provider import RigProvider, load_provider, materialize

log = logging.getLogger(__name__)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class SessionState:
    """The one typed hand-off from the controller to every worker, written once as JSON: each node's rigs.yaml
    config (credentials as references, never values) and profile, the suites that apply, where baselines and
    history live, the boot results. Workers read it instead of loading rigs.yaml again.
    """

    run_id: str
    rig: str
    rigs_file: str  # the materialised inventory (with provider nodes), credentials as references
    image_name: str | None
    image: dict[str, Any] | None
    boot: bool
    started_at: str
    lease_id: str | None = None
    lease_lost_file: str | None = None
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> ProvisionResult dict
    excluded: dict[str, str] = field(default_factory=dict)  # name -> why it was not used
    error: str | None = None
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> NodeConfig (credential references)
    suites: list[str] | None = None  # suite modules that apply to the rig (None: all)
    baselines_dir: str | None = None
    history: str | None = None
    history_password: str | None = None  # a ${ENV}/file: reference, never the value
    node_images: dict[str, dict[str, Any]] = field(default_factory=dict)
    """node -> the ImageConfig it must run, where it differs from ``image`` (a rollout's control group)."""
    kubernetes: dict[str, Any] | None = None
    """The rig's ``kubernetes:`` hand-off (hilt.rig.config.KubernetesPublish); None: the rig does not opt in."""
    lease_wide_ungated: str | None = None
    """Why no lease-wide metric of this run is gated (a rollout's wave: its nodes run the old and the new image,
    so a lease-wide measurement is of neither); None: they are gated as usual."""

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> SessionState:
        return cls(**json.loads(Path(path).read_text()))

    def node_config(self, node: str) -> NodeConfig:
        """The node's rigs.yaml config, as the controller materialised it (validated again, like the file)."""
        return NodeConfig.model_validate(self.configs[node])

    @property
    def profiles(self) -> dict[str, str | None]:
        """Each node's fabric profile."""
        return {name: cfg.get("profile") for name, cfg in self.configs.items()}

    def result(self, node: str) -> ProvisionResult | None:
        data = self.nodes.get(node)
        return ProvisionResult.from_dict(data) if data else None

    @property
    def node_names(self) -> list[str]:
        return sorted(set(self.nodes) | set(self.excluded))

    def lease_lost(self) -> str | None:
        if self.lease_lost_file and Path(self.lease_lost_file).exists():
            return Path(self.lease_lost_file).read_text().strip() or "lease lost"
        return None


class RigSession:
    """reserve -> provision; later finish() releases everything, even after a failed start."""

    def __init__(
        self,
        rigs_file: Path,
        rig: str | None,
        image: str | None,
        *,
        boot: bool,
        reports_dir: Path,
        lease_store: str | None = None,
        lease_wait_s: float = 0.0,
        lease_ttl_s: float = 60.0,
        progress: ProgressCallback | None = None,
    ):
        self.rigs_file = Path(rigs_file)
        self.rig_name = rig
        self.image_arg = image
        self.boot = boot
        self.reports_dir = Path(reports_dir)
        self.lease_store_url = lease_store
        self.lease_wait_s = lease_wait_s
        self.lease_ttl_s = lease_ttl_s
        self.progress = progress
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.work_dir = self.reports_dir / ".hilt" / self.run_id
        self.provider: RigProvider | None = None
        self.hold: LeaseHold | None = None
        self.state: SessionState | None = None
        self.inventory: Inventory | None = None
        self.cancel = threading.Event()  # set by finish(): a boot stops at its next step, a lease wait at once
        self.waiting: Waiting | None = None
        """What the session is waiting for while its nodes are busy (--lease-wait), until the lease is granted;
        left set when the wait was cut off, so that the run's record can say what it was waiting for."""
        self._idle = threading.Event()  # clear while start() runs (in xdist's case, in a thread of its own)
        self._idle.set()
        self._starter: int | None = None

    @property
    def state_path(self) -> Path:
        return self.work_dir / "session.json"

    def _say(self, node: str, what: str) -> None:
        if self.progress is not None:
            self.progress(node, what)

    def plan(self) -> int | None:
        """Read rigs.yaml (start() uses what it read: the file is read once) and return how many nodes this session
        will lease at most, so that workers can start while the nodes boot; None where only a running provider
        or an adopted session knows. Bad input is a ConfigError here, before anything starts."""
        if os.environ.get(HANDOFF_ENV):
            return None
        self.inventory = load_inventory(self.rigs_file)
        rig_name = self.rig_name or self.inventory.default_rig
        rig = self.inventory.rig(rig_name)
        if rig.provider is None:
            return len(rig.nodes)
        self.provider = load_provider(rig.provider)
        planned = getattr(self.provider, "planned", None)
        if planned is None:
            return None
        return len(set(rig.nodes) | set(planned(rig_name, dict(rig.provider.options))["nodes"]))

    def start(self) -> SessionState:
        """Reserve and boot; finish(), from another thread, cancels a boot in progress and waits for it."""
        self._idle.clear()
        self._starter = threading.get_ident()
        try:
            return self._start()
        finally:
            self._idle.set()

    def _start(self) -> SessionState:
        handed = os.environ.get(HANDOFF_ENV)
        if handed:
            return self._adopt(Path(handed))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        inventory = self.inventory or load_inventory(self.rigs_file)
        if inventory.history_note:
            self._say("session", inventory.history_note)
        rig_name = self.rig_name or inventory.default_rig
        rig = inventory.rig(rig_name)
        if rig.provider is not None:
            self._say(rig_name, "starting the rig's provider")
            self.provider = self.provider or load_provider(rig.provider)
            provided = self.provider.start(rig_name, dict(rig.provider.options), self.work_dir / "provider")
            inventory = materialize(inventory, rig_name, provided)
            rig = inventory.rig(rig_name)
        self.inventory = inventory
        materialised = self.work_dir / "rigs.yaml"
        dump = write_materialised(inventory, rig_name, materialised)

        image_name, image = self._image(inventory, rig_name)
        self.state = SessionState(
            run_id=self.run_id, rig=rig_name, rigs_file=str(materialised), image_name=image_name,
            image=image.model_dump(mode="json") if image else None, boot=self.boot and image is not None,
            started_at=utc_now(), lease_lost_file=str(self.work_dir / "lease-lost"),
            configs=dump["rigs"][rig_name]["nodes"], suites=rig.suites, baselines_dir=inventory.baselines_dir,
            history=inventory.history, history_password=inventory.history_password,
            kubernetes=rig.kubernetes.model_dump(mode="json") if rig.kubernetes else None,
        )
        if not rig.nodes:
            raise ConfigError(f"{inventory.source}: rig {rig_name!r} has no nodes")
        nodes = self._reserve(inventory, rig_name, dict(rig.nodes))
        results = provision(nodes, image_name, image, boot=self.state.boot, progress=self.progress,
                            cancel=self.cancel)
        if self.hold is not None:  # a boot the run cancelled is no failure of its node: its health stays
            self.hold.record_health({name: r for name, r in results.items() if not r.cancelled})
        self.state.nodes = {name: r.to_dict() for name, r in results.items()}
        self.state.save(self.state_path)
        return self.state

    def _adopt(self, path: Path) -> SessionState:
        """Take over a session whose nodes another process leased and booted (`hilt rollout`): no lease, no boot,
        nothing to release; the state it wrote is this run's hand-off to the workers."""
        try:
            state = SessionState.load(path)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{path} (${HANDOFF_ENV}): not a session state: {exc}") from None
        self.run_id = state.run_id
        self.work_dir = self.reports_dir / ".hilt" / self.run_id
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.state = state
        state.save(self.state_path)
        return state

    def _image(self, inventory: Inventory, rig_name: str) -> tuple[str | None, ImageConfig | None]:
        if self.image_arg:
            return inventory.image(self.image_arg)
        default = inventory.rig(rig_name).default_image
        if default:
            return inventory.image(default)
        return None, None

    def lease_key(self, node: str) -> str:
        assert self.state is not None
        return f"{self.state.rig}/{node}"

    def _reserve(self, inventory: Inventory, rig_name: str, nodes: dict[str, NodeConfig]) -> dict[str, NodeConfig]:
        assert self.state is not None
        self.hold = LeaseHold.open(self.lease_store_url or inventory.lease_store, rig_name, self.run_id,
                                   bad_after=self._bad_after(), lost_file=Path(self.state.lease_lost_file))
        records = {name: self.hold.health(name) for name in nodes}
        sick = {name: record for name, record in records.items() if record.state in SICK}
        for name, record in sick.items():
            self.state.excluded[name] = (
                f"node {name} is {record.state} ({record.reason}); "
                f"`hilt nodes set-health {self.lease_key(name)} good --why ...` after repairing it"
            )
            self._say(name, f"skipped: health {record.state}")
        candidates = {name: cfg for name, cfg in nodes.items() if name not in sick}
        unknown = {name: cfg for name, cfg in candidates.items() if records[name].state == HealthState.UNKNOWN}
        problems = self._health_checks(unknown)
        usable: dict[str, NodeConfig] = {}
        for name, cfg in candidates.items():
            if name in problems:
                record = self.hold.record_failure(name, f"health check: {problems[name]}")
                self.state.excluded[name] = (f"node {name} failed its health check: {problems[name]} "
                                             f"(now {record.state})")
                continue
            usable[name] = cfg
        if not usable:
            self.state.save(self.state_path)
            return {}
        for name in usable:
            self._say(name, "reserving")

        def on_wait(waiting: Waiting) -> None:
            self.waiting = waiting
            self._say(rig_name, f"waiting for nodes: {waiting.describe()}")

        # cancel: a run stopped while it waits (a signal, in xdist's case to another thread) leaves the queue at once
        lease = self.hold.acquire(list(usable), f"hilt run {self.run_id} on rig {rig_name}",
                                  ttl_s=self.lease_ttl_s, wait_s=self.lease_wait_s, on_wait=on_wait,
                                  cancel=self.cancel)
        if self.cancel.is_set():  # the run ended as the nodes were granted: give them back at once
            self.hold.release()
            raise LeaseError("the run ended while waiting for its nodes; the lease was released")
        self.waiting = None
        self.state.lease_id = lease.id
        return usable

    def _health_checks(self, nodes: dict[str, NodeConfig]) -> dict[str, HiltError]:
        """Nodes left `unknown` by an earlier infrastructure failure must answer their BMC first; they are asked at
        once (a BMC that does not answer costs its retries, seconds: one after another, that grew with the node
        count). Returns the nodes that failed, with why."""

        def check(name: str, cfg: NodeConfig) -> HiltError | None:
            self._say(name, "health check (was unknown)")
            try:
                with Bmc.from_config(cfg, name=name) as bmc:
                    bmc.power_state()
            except HiltError as exc:
                return exc
            return None

        if not nodes:
            return {}
        with ThreadPoolExecutor(max_workers=min(len(nodes), 32), thread_name_prefix="health-check") as pool:
            outcomes = dict(zip(nodes, pool.map(lambda item: check(*item), nodes.items()), strict=True))
        return {name: problem for name, problem in outcomes.items() if problem is not None}

    def _bad_after(self) -> int:
        return self.inventory.health.bad_after if self.inventory else 3

    def stop_boot(self, wait_s: float = 30.0) -> None:
        """Cancel a boot in progress (start() in another thread: xdist's case) and wait for it, up to ``wait_s``,
        so that nothing touches the nodes after the run's end; and write a lease lost meanwhile to the lease-lost
        file now (the hold's watcher writes it within 0.2 s: the run's record must not miss it)."""
        self.cancel.set()
        if self._starter is not None and self._starter != threading.get_ident():
            if not self._idle.wait(wait_s):
                log.warning("the boot did not stop within %.0f s of being cancelled", wait_s)
        hold = self.hold
        if hold is not None:
            lost = hold.lost_reason
            if lost and hold.lost_file is not None and not hold.lost_file.exists():
                hold.lost_file.write_text(lost)

    def finish(self, boot_wait_s: float = 30.0) -> None:
        """Release the lease and stop the provider; safe to call after a partial start, and from another thread
        while start() boots (the boot is stopped first: stop_boot)."""
        self.stop_boot(boot_wait_s)
        hold, self.hold = self.hold, None
        if hold is not None:
            hold.release()
        if self.provider is not None:
            try:
                self.provider.stop()
            finally:
                self.provider = None


HANDOFF_ENV = "HILT_SESSION_STATE"
"""A session state file that a pytest run adopts instead of leasing and booting (set by `hilt rollout` for the
gate run of each wave, whose nodes it holds across waves)."""


def write_materialised(inventory: Inventory, rig_name: str, path: Path) -> dict[str, Any]:
    """Write the inventory with the rig's nodes as they are now (a provider's included), credentials as
    references; return the dump."""
    dump = inventory.model_dump(mode="json", exclude={"source"})
    for node in dump["rigs"][rig_name]["nodes"].values():
        for key in ("username",):
            value = node["bmc"][key]
            node["bmc"][key] = value.removeprefix("literal:")
    path.write_text(yaml.safe_dump(dump, sort_keys=False))
    return dump


def subset_state(run_id: str, rig: str, rigs_file: Path, inventory: Inventory, image_name: str,
                 image: ImageConfig, results: dict[str, ProvisionResult], *, lease_id: str | None,
                 lease_lost_file: Path | None, node_images: dict[str, ImageConfig] | None = None,
                 lease_wide_ungated: str | None = None) -> SessionState:
    """The hand-off for a run on a chosen subset of a lease that the caller holds and booted itself (a rollout's
    wave: its new nodes and the control group). ``boot`` is False: the run boots nothing, the caller did.
    ``lease_wide_ungated``: why the run gates no lease-wide metric (SessionState.lease_wide_ungated).
    """
    dump = yaml.safe_load(Path(rigs_file).read_text())
    configs = {name: dump["rigs"][rig]["nodes"][name] for name in results}
    return SessionState(
        run_id=run_id, rig=rig, rigs_file=str(rigs_file), image_name=image_name,
        image=image.model_dump(mode="json"), boot=False, started_at=utc_now(), lease_id=lease_id,
        lease_lost_file=str(lease_lost_file) if lease_lost_file else None,
        nodes={name: r.to_dict() for name, r in results.items()}, configs=configs,
        suites=inventory.rig(rig).suites, baselines_dir=inventory.baselines_dir, history=inventory.history,
        history_password=inventory.history_password,
        node_images={name: cfg.model_dump(mode="json") for name, cfg in (node_images or {}).items()},
        kubernetes=(inventory.rig(rig).kubernetes.model_dump(mode="json") if inventory.rig(rig).kubernetes
                    else None),
        lease_wide_ungated=lease_wide_ungated,
    )


def node_configs(state: SessionState) -> dict[str, NodeConfig]:
    """Every node's config from the session state (no second reading of rigs.yaml)."""
    return {name: state.node_config(name) for name in state.configs}

