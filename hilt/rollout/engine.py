"""The rollout's wave loop: lease the rig once, record what every node runs, then per wave boot the new image on
the wave's nodes, gate them next to the control group, and stop and roll back when a wave regresses.

Every step is written to the state file (hilt/rollout/state.py) before it is taken, so ``resume`` after a crash
knows which nodes got the image: a node marked ``new`` is never booted again, and one marked ``booting`` is
booted again only when it does not already run the new image with a new boot id. The rollback likewise: a node
marked ``rolling_back`` is booted again only when it does not already run its rollback image on a boot that came
after the rollback started (the boot id it ran then is written with the mark, before the boot).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

from hilt.errors import ConfigError, HiltError, LeaseLost, LeaseWaitCancelled, NodeError
from hilt.exitcodes import ExitCode
from hilt.history.open import open_history
from hilt.lease.hold import LeaseHold
from hilt.lease.model import Waiting
from hilt.provision.boot import ProvisionResult, provision, read_running_images
from hilt.pytestplugin.command import gate_run_args
from hilt.record.run_record import RunRecord
from hilt.rig.config import ImageConfig, Inventory, NodeConfig, load_inventory
from hilt.rig.provider import running_rig
from hilt.rollout import record
from hilt.rollout.plan import plan_waves
from hilt.rollout.previous import image_name_of, last_passed_images
from hilt.rollout.state import (
    Controller,
    NodeImage,
    Rollback,
    RolloutNode,
    RolloutState,
    StateStore,
    Wave,
    new_rollout_id,
    utc_now,
)
from hilt.rollout.verdict import wave_verdict
from hilt.session.rig_session import HANDOFF_ENV, subset_state, write_materialised
from hilt.util.processes import pid_alive
from hilt.util.stop_signals import StopSignals

log = logging.getLogger(__name__)

Say = Callable[[str], None]

LEASE_WIDE_UNGATED = ("a rollout's wave holds nodes on the old and the new image, so a lease-wide metric measures "
                      "neither: judged for information only (docs/rollout.md)")
"""Each wave's gate run gates no lease-wide metric: the baselines and the control group judge each node."""

MAX_LOOKS = 3
"""Gate runs per wave while only the canary-versus-control comparison is undecided (docs/rollout.md)."""


def _absolute_suites(suites: str | None) -> str | None:
    """``--suites`` as an absolute path (keeping a ``::test`` selector), so ``resume`` from another directory
    runs the same suites."""
    if suites is None:
        return None
    path, sep, selector = suites.partition("::")
    return f"{Path(path).resolve()}{sep}{selector}"


def controller_alive(state: RolloutState) -> bool:
    """Whether another process on this host is driving the rollout now (a dead one can be resumed)."""
    c = state.controller
    return (c is not None and c.host == socket.gethostname() and c.pid != os.getpid() and pid_alive(c.pid)
            and state.status == "running")


def _die_with_parent() -> None:
    """The gate run must not outlive a killed controller: a resumed rollout runs its own, alone on the nodes."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Rollout:
    """Drives one rollout from its state; ``run`` continues from wherever the state says it stopped."""

    def __init__(self, state: RolloutState, store: StateStore, say: Say = print):
        self.state = state
        self.store = store
        self.say = say
        self.dir = store.directory(state.id)
        self.inventory: Inventory | None = None
        self.hold: LeaseHold | None = None

    # ------------------------------------------------------------------ set-up

    @classmethod
    def create(cls, store: StateStore, *, rigs_file: Path, rig: str | None, image: str, canary: str, waves: str,
               rollback_to: str | None, on_inconclusive: str, reports_dir: Path, lease_store: str | None,
               lease_wait_s: float, lease_ttl_s: float, suites: str | None, pytest_args: list[str],
               say: Say = print) -> Rollout:
        """Check the options against the rig and write the plan (nothing is leased or booted yet)."""
        if on_inconclusive not in ("stop", "rollback"):
            raise ConfigError(f"--on-inconclusive {on_inconclusive!r}: valid are stop and rollback")
        inventory = load_inventory(rigs_file)
        rig_name = rig or inventory.default_rig
        inventory = live_rig(inventory, rig_name)  # a provided rig's nodes and images, while it runs
        image_name, image_cfg = inventory.image(image)
        if rollback_to not in (None, "previous"):
            inventory.image(rollback_to)  # an unknown image is refused now, before anything is touched
        nodes = sorted(inventory.rig(rig_name).nodes)
        plans = plan_waves(nodes, canary, waves)
        state = RolloutState(
            id=new_rollout_id(), rig=rig_name, image=image_name, image_config=image_cfg.model_dump(mode="json"),
            rigs_file=str(Path(rigs_file).resolve()), canary=canary, waves_option=waves, rollback_to=rollback_to,
            on_inconclusive=on_inconclusive, reports_dir=str(Path(reports_dir).resolve()),
            lease_store=lease_store, lease_wait_s=lease_wait_s, lease_ttl_s=lease_ttl_s,
            suites=_absolute_suites(suites), pytest_args=list(pytest_args), created_at=utc_now(),
            waves=[Wave(index=p.index, nodes=list(p.nodes), control=list(p.control)) for p in plans],
        )
        for p in plans:
            for name in p.nodes:
                state.nodes[name] = RolloutNode(name=name, wave=p.index, before=NodeImage())
        state.event(f"planned: {image_name} on rig {rig_name}, " + "; ".join(
            f"{p.name}: {', '.join(p.nodes)}" for p in plans))
        store.save(state)
        return cls(state, store, say)

    def _load_inventory(self) -> Inventory:
        inventory = live_rig(load_inventory(self.state.rigs_file), self.state.rig)
        self.inventory = inventory
        return inventory

    @property
    def rigs_path(self) -> Path:
        return self.dir / "rigs.yaml"

    def _configs(self) -> dict[str, NodeConfig]:
        assert self.inventory is not None
        rig = self.inventory.rig(self.state.rig)
        missing = [n for n in self.state.nodes if n not in rig.nodes]
        if missing:
            raise ConfigError(f"{self.state.rigs_file}: rig {self.state.rig!r} has no node(s) {missing} any more; "
                              f"this rollout planned {sorted(self.state.nodes)}")
        return {n: rig.nodes[n] for n in self.state.nodes}

    def save(self) -> None:
        self.store.save(self.state)

    def note(self, what: str) -> None:
        self.state.event(what)
        self.say(f"rollout {self.state.id}: {what}")

    # ------------------------------------------------------------------ lease

    def _hold_lease(self, then: str) -> None:
        """Lease every node of the rollout; ``then`` says how to go on if a signal stops the wait."""
        assert self.inventory is not None
        self.hold = LeaseHold.open(self.state.lease_store or self.inventory.lease_store, self.state.rig,
                                   self.state.id, bad_after=self.inventory.health.bad_after,
                                   lost_file=self.dir / "lease-lost")
        if all(w.status == "pending" for w in self.state.waves) and self.state.rollback is None:
            self._refuse_sick_nodes()
        if self.state.lease_id:
            self._drop_dead_lease(self.state.lease_id)
        blocked: list[Waiting] = []

        def waiting(w: Waiting) -> None:
            blocked[:] = [w]
            self.say(f"waiting for nodes: {w}")

        started = time.monotonic()
        # a CI job's timeout (SIGTERM) or Ctrl-C while queued for busy nodes: out of the queue at once, holding
        # nothing, and said (before, SIGTERM killed the controller in the queue with nothing written)
        with StopSignals() as stop:
            try:
                lease = self.hold.acquire(list(self.state.nodes),
                                          f"hilt rollout {self.state.id}: {self.state.image} on rig {self.state.rig}",
                                          ttl_s=self.state.lease_ttl_s, wait_s=self.state.lease_wait_s,
                                          on_wait=waiting, cancel=stop.event)
            except LeaseWaitCancelled:
                lease = None
        if stop.name is not None:  # also one that came as the nodes were granted: they go back at once
            self.release()
            self._stopped_waiting(stop.name, time.monotonic() - started, blocked[0] if blocked else None, then)
        assert lease is not None
        self.state.lease_id = lease.id
        self.state.controller = Controller(host=socket.gethostname(), pid=os.getpid())
        if self.state.status == "running":
            self.state.reason = None  # a stop while waiting, said by an earlier controller, is over
        self.save()

    def _stopped_waiting(self, signal_name: str, waited_s: float, blocked: Waiting | None, then: str) -> NoReturn:
        """A rollout stopped while it waited for its lease touched nothing: it stays resumable (status
        ``running``, no controller alive), and the state, the records and the one error line say why."""
        held = f" ({blocked.blockers()})" if blocked is not None else ""
        why = (f"rollout {self.state.id}: stopped by {signal_name} after {waited_s:.0f} s waiting for rig "
               f"{self.state.rig}'s nodes{held}: left the wait queue, nothing leased or booted; {then}")
        if self.state.status == "running":  # a finished rollout (an abort's) keeps the reason it ended with
            self.state.reason = why
        self.state.event(f"stopped by {signal_name} while waiting for the lease: nothing leased or booted")
        self.save()
        raise LeaseWaitCancelled(why)

    def _drop_dead_lease(self, lease_id: str) -> None:
        """The lease of this rollout's dead controller (same host, pid gone) is released, not waited out."""
        assert self.hold is not None
        old = self.hold.store.get(lease_id)
        if old is None:
            return
        holder = old.holder
        if (self.state.id in holder.purpose and holder.host == socket.gethostname()
                and not pid_alive(holder.pid)):
            self.hold.store.release(lease_id, by=f"hilt rollout resume (pid {os.getpid()})",
                                    why=f"the controller of rollout {self.state.id} (pid {holder.pid}) died")

    def _refuse_sick_nodes(self) -> None:
        """A node marked bad or in maintenance is not given a new image: the rollout would have to skip it and
        could not end with every node on the image, so it does not start."""
        assert self.hold is not None
        sick = [f"node {name} is {record.state} ({record.reason})"
                for name, record in self.hold.sick(self.state.nodes).items()]
        if sick:
            raise ConfigError(f"rig {self.state.rig}: " + "; ".join(sick) + ": a rollout needs every node of the rig; "
                              f"after repairing it, `hilt nodes set-health {self.state.rig}/NODE good --why ...`")

    def _record_health(self, results: dict[str, ProvisionResult]) -> None:
        """Boots count for node health as a run's do (docs/leases.md): a success clears, a failure counts."""
        if self.hold is not None:
            self.hold.record_health(results)

    def _check_lease(self) -> None:
        lost = self.hold.lost_reason if self.hold is not None else None
        if lost:
            raise LeaseLost(f"rollout {self.state.id}: {lost}; stopped (resume it with "
                            f"`hilt rollout resume {self.state.id}`)")

    def release(self) -> None:
        hold, self.hold = self.hold, None
        if hold is not None:
            hold.release()

    # ------------------------------------------------------------------ what runs before

    def _record_before(self) -> None:
        """Read every node's running image before touching any, and decide what a rollback would boot."""
        assert self.inventory is not None
        if all(n.before.boot_id for n in self.state.nodes.values()):
            return  # recorded by the controller that started the rollout
        self.note("reading the running image of " + ", ".join(self.state.nodes))
        running = read_running_images(self._configs())
        previous: dict[str, str] | None = None
        problems = []
        for name, node in self.state.nodes.items():
            seen = running[name]
            node.before = NodeImage(image=image_name_of(self.inventory, seen.get("image_id")), **seen)
            if self.state.rollback_to not in (None, "previous"):
                node.rollback_image, node.rollback_from = self.state.rollback_to, "--rollback-to"
            elif self.state.rollback_to is None and node.before.image:
                node.rollback_image, node.rollback_from = node.before.image, "running at start"
            else:
                if previous is None:
                    previous = last_passed_images(self.inventory, self.state.rig)
                if name in previous:
                    node.rollback_image, node.rollback_from = previous[name], "history (last passed run)"
            if node.rollback_image is None:
                problems.append(f"node {name} runs image id {seen.get('image_id')!r}, which no image of rigs.yaml "
                                "has, and no passed run in the history names its image")
        if problems:
            raise ConfigError(f"{self.state.rigs_file}: cannot tell what to roll back to: " + "; ".join(problems)
                              + "; pass --rollback-to IMAGE")
        self.note("before: " + ", ".join(f"{n.name} {n.before.image or n.before.image_id} "
                                          f"(rollback: {n.rollback_image})" for n in self.state.nodes.values()))
        self.save()

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        """Lease, record, walk the waves; returns the exit code (docs/ci.md) and leaves the records written."""
        try:
            try:
                self._load_inventory()
                write_materialised(self.inventory, self.state.rig, self.rigs_path)
                self._hold_lease(f"`hilt rollout resume {self.state.id}` continues it")
                if self.state.rollback is not None and self.state.rollback.ok is None:
                    return self._finish_rollback()
                self._record_before()
            except ConfigError as exc:
                if any(n.status != "old" for n in self.state.nodes.values()):
                    raise
                self._finish("aborted", ExitCode.USAGE_ERROR, f"not started: {exc}")  # no node was touched
                raise
            for wave in self.state.waves:
                if wave.status == "passed":
                    continue
                outcome = self._wave(wave)
                if outcome == "pass":
                    continue
                if outcome == "regression":
                    return self._roll_back(f"{wave.name} regressed: {wave.reason}", "regression", ExitCode.FAILED)
                if self.state.on_inconclusive == "rollback":
                    return self._roll_back(f"{wave.name} inconclusive: {wave.reason}", "inconclusive",
                                           ExitCode.INCONCLUSIVE)
                return self._finish("inconclusive", ExitCode.INCONCLUSIVE,
                                    f"{wave.name} inconclusive: {wave.reason}; stopped without rollback "
                                    f"(`hilt rollout resume {self.state.id}` retries the wave, "
                                    f"`hilt rollout abort {self.state.id} --why ...` rolls back)")
            done = len(self.state.waves)
            return self._finish("passed", ExitCode.PASS,
                                f"{done} waves passed; every node runs {self.state.image}")
        finally:
            self.release()
            record.write_records(self.state, self.dir)

    def abort(self, why: str) -> int:
        """Roll back every node that got the new image; the rollout ends as aborted."""
        try:
            self._load_inventory()
            write_materialised(self.inventory, self.state.rig, self.rigs_path)
            self._hold_lease(f"run `hilt rollout abort {self.state.id} --why ...` again to roll back")
            return self._roll_back(f"aborted: {why}", "aborted", ExitCode.PASS)
        finally:
            self.release()
            record.write_records(self.state, self.dir)

    def _wave(self, wave: Wave) -> str:
        assert self.inventory is not None
        state = self.state
        configs = self._configs()
        image_name, image = state.image, ImageConfig.model_validate(state.image_config)
        wave.status, wave.started_at = "booting", wave.started_at or utc_now()
        ready = [n for n in wave.nodes if state.nodes[n].status == "new"]
        for name in wave.nodes:
            node = state.nodes[name]
            if node.status == "booting" and (boot_id := self._booted_on(name, configs[name], image,
                                                                         node.before.boot_id)):
                node.status, node.new_boot_id = "new", boot_id
                self.note(f"{wave.name}: node {name} already runs {image_name} (boot id {node.new_boot_id or '?'}); "
                          "not booted again")
                ready.append(name)
        to_boot = [n for n in wave.nodes if n not in ready]
        for name in to_boot:
            state.nodes[name].status = "booting"
        self.save()
        self._check_lease()
        results: dict[str, ProvisionResult] = {}
        if to_boot:
            self.note(f"{wave.name}: booting {image_name} on {', '.join(to_boot)}")
            results = provision({n: configs[n] for n in to_boot}, image_name, image, boot=True,
                                progress=self._progress)
            self._record_health(results)
            for name, result in results.items():
                node = state.nodes[name]
                if result.ok:
                    node.status, node.new_boot_id, node.error = "new", result.boot_id, None
                else:
                    node.error = result.error
            self.save()
        failed = [f"node {n}: {r.error}" for n, r in results.items() if not r.ok]
        if failed:
            return self._decided(wave, "inconclusive", f"{image_name} did not boot: " + "; ".join(failed))
        if ready:  # booted by an earlier controller: proven again without a boot
            results.update(provision({n: configs[n] for n in ready}, image_name, image, boot=False))
        control = self._control(wave, configs)
        if isinstance(control, str):
            return self._decided(wave, "inconclusive", control)
        results.update(control)
        unusable = [f"node {n}: {r.error}" for n, r in results.items() if not r.ok]
        if unusable:
            return self._decided(wave, "inconclusive", "; ".join(unusable))
        return self._gate(wave, results, image_name, image)

    def _booted_on(self, name: str, cfg: NodeConfig, image: ImageConfig, *earlier: str | None) -> str | None:
        """A boot that a killed controller started: the node's boot id if it runs ``image`` already, on a boot
        that is none of ``earlier`` (the boots it ran before that boot started); else None."""
        seen = _running({name: cfg})[name]
        want = image.identity.image_id
        if (seen is None or (want and seen.get("image_id") != want) or not seen.get("boot_id")
                or seen["boot_id"] in earlier):
            return None
        return seen["boot_id"]

    def _control(self, wave: Wave, configs: dict[str, NodeConfig]) -> dict[str, ProvisionResult] | str:
        """The control group, verified without a boot: each node still runs the image recorded at the start."""
        if not wave.control:
            return {}
        results = provision({n: configs[n] for n in wave.control}, None, None, boot=False)
        problems = []
        for name, result in results.items():
            before = self.state.nodes[name].before
            if not result.ok:
                problems.append(f"control node {name}: {result.error}")
            elif before.image_id and result.image_id != before.image_id:
                problems.append(f"control node {name} runs {result.image_id}, not {before.image_id} as at the start")
        if problems:
            return "the control group is not on the old image: " + "; ".join(problems)
        return results

    def _gate(self, wave: Wave, results: dict[str, ProvisionResult], image_name: str, image: ImageConfig) -> str:
        """Gate runs of the wave's nodes next to the control group: one, and up to MAX_LOOKS when only the canary
        versus control comparison is undecided (each look measures both groups again, in its own window; the
        comparison pools the looks, as the sequential test it is)."""
        assert self.inventory is not None
        state = self.state
        wave.status = "gating"
        node_images = {}
        for name in wave.control:
            before = state.nodes[name].before.image
            if before:
                node_images[name] = self.inventory.images[before]
        looks: list[RunRecord] = []
        for look in range(1, MAX_LOOKS + 1):
            run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(3).hex()
            wave.run_id = run_id
            wave.runs = [*wave.runs[: look - 1], run_id]
            suffix = "" if look == 1 else f"-look-{look}"
            reports = Path(state.reports_dir) / "rollouts" / state.id / f"wave-{wave.index}{suffix}"
            wave.reports = str(reports)
            self.save()
            self._check_lease()
            session = subset_state(run_id, state.rig, self.rigs_path, self.inventory, image_name, image, results,
                                   lease_id=state.lease_id, lease_lost_file=self.dir / "lease-lost",
                                   node_images=node_images, lease_wide_ungated=LEASE_WIDE_UNGATED)
            handoff = self.dir / f"wave-{wave.index}-session.json"
            session.save(handoff)
            _clear(reports)
            self.note(f"{wave.name}: gating {', '.join(wave.nodes)} ({image_name})"
                      + (f" next to the control group {', '.join(wave.control)}" if wave.control else
                         " (no control group left)") + f"; look {look}, run {run_id}, reports in {reports}")
            code = self._pytest(reports, handoff)
            summary = reports / "summary.json"
            if not summary.is_file():
                return self._decided(wave, "inconclusive", f"the gate run wrote no {summary} (exit {code})")
            run = RunRecord.model_validate_json(summary.read_text())
            verdict = wave_verdict(run, wave.nodes, wave.control, run_exit=code, earlier=looks)
            run.rollout = {"id": state.id, "wave": wave.index, "look": look, "nodes": list(wave.nodes),
                           "control": list(wave.control), "outcome": verdict.outcome, "reason": verdict.reason}
            summary.write_text(run.model_dump_json(indent=2))
            self._append_history(run)
            looks.append(run)
            wave.checks = verdict.checks
            if not verdict.look_again or look == MAX_LOOKS:
                break
            self.note(f"{wave.name}: canary vs control undecided after look {look}: measuring both groups again")
        return self._decided(wave, verdict.outcome, verdict.reason)

    def _pytest(self, reports: Path, handoff: Path) -> int:
        state = self.state
        args = gate_run_args(suites=state.suites, rigs_file=self.rigs_path, reports=reports, no_boot=True,
                             extra=state.pytest_args)
        env = {**os.environ, HANDOFF_ENV: str(handoff), "HILT_NO_HISTORY": "1"}  # the rollout appends, tagged
        proc = subprocess.run([sys.executable, "-m", "pytest", *args], env=env, preexec_fn=_die_with_parent,
                              check=False)
        return proc.returncode

    def _append_history(self, run: RunRecord) -> None:
        if os.environ.get("HILT_NO_HISTORY"):
            return
        assert self.inventory is not None
        try:
            open_history(self.inventory.history, self.inventory.history_password).append(run)
        except HiltError as exc:
            self.say(f"rollout {self.state.id}: warning: run {run.run_id} not added to the history: {exc}")

    def _decided(self, wave: Wave, outcome: str, reason: str) -> str:
        wave.status = {"pass": "passed"}.get(outcome, outcome)  # type: ignore[assignment]
        wave.reason = reason
        wave.finished_at = utc_now()
        self.note(f"{wave.name}: {outcome.upper()}: {reason}")
        self.save()
        record.write_records(self.state, self.dir)
        return outcome

    def _progress(self, node: str, what: str) -> None:
        self.say(f"  {node}: {what}")

    # ------------------------------------------------------------------ rollback and the end

    def _roll_back(self, why: str, outcome: str, code: int) -> int:
        nodes = self.state.nodes_on_new()
        self.state.rollback = Rollback(why=why, started_at=utc_now(), nodes=nodes, outcome=outcome,
                                       exit_code=int(code))
        self.save()
        return self._finish_rollback()

    def _finish_rollback(self) -> int:
        """Boot each node of the rollback on its rollback image. A node that a killed controller was rolling back
        (``rolling_back``) and that runs that image on a boot it did not run when the rollback started is proven
        there without a boot, as ``_wave`` does for a node that was ``booting``."""
        assert self.inventory is not None and self.state.rollback is not None
        rollback = self.state.rollback
        configs = self._configs()
        todo = [n for n in rollback.nodes if self.state.nodes[n].status != "rolled_back"]
        interrupted = {n for n in todo if self.state.nodes[n].status == "rolling_back"}
        # the boot each rollback boot replaces, written before it, so that a resume can tell the two apart: a node
        # on the new image runs its new boot; any other (a failed boot, a crash mid-boot) is read
        running = _running({n: configs[n] for n in todo if self.state.nodes[n].status not in ("new", "rolling_back")})
        groups: dict[str, list[str]] = {}
        for name in todo:
            node = self.state.nodes[name]
            groups.setdefault(node.rollback_image or "", []).append(name)
            if name not in interrupted:
                node.boot_id_at_rollback = node.new_boot_id if node.status == "new" else \
                    (running.get(name) or {}).get("boot_id")
                node.status = "rolling_back"
        self.save()
        for image_name, names in groups.items():
            self._check_lease()
            name, image = self.inventory.image(image_name)
            done: dict[str, str] = {}
            for n in sorted(interrupted.intersection(names)):
                node = self.state.nodes[n]
                boot_id = self._booted_on(n, configs[n], image, node.before.boot_id, node.new_boot_id,
                                          node.boot_id_at_rollback)
                if boot_id:
                    done[n] = boot_id
                    self.note(f"node {n} already runs {name} (boot id {boot_id[:8]}, booted after the rollback "
                              "started); not booted again")
            results = provision({n: configs[n] for n in done}, name, image, boot=False)
            to_boot = [n for n in names if n not in done]
            if to_boot:
                self.note(f"rolling back {', '.join(to_boot)} to {name}")
                booted = provision({n: configs[n] for n in to_boot}, name, image, boot=True, progress=self._progress)
                self._record_health(booted)
                results.update(booted)
            for node_name, result in results.items():
                node = self.state.nodes[node_name]
                if result.ok:
                    node.status, node.rollback_boot_id, node.error = "rolled_back", result.boot_id, None
                    identity = (result.identity or {}).get("status", "unverified")
                    since = node.boot_id_at_rollback if node_name in done else result.old_boot_id
                    node.rollback_proof = (f"boot id {(since or '?')[:8]} -> {(result.boot_id or '?')[:8]}"
                                           f", image {result.image_id}, identity {identity}")
                else:
                    node.status, node.error = "rollback_failed", result.error
            self.save()
        failed = [f"node {n}: {self.state.nodes[n].error}" for n in rollback.nodes
                  if self.state.nodes[n].status != "rolled_back"]
        rollback.ok = not failed
        rollback.finished_at = utc_now()
        done = ", ".join(f"{n} -> {self.state.nodes[n].rollback_image}" for n in rollback.nodes) or "nothing"
        reason = f"{rollback.why}; rolled back: {done}" if not failed else \
            f"{rollback.why}; ROLLBACK FAILED: {'; '.join(failed)}"
        code = rollback.exit_code
        if failed and code == ExitCode.PASS:
            code = int(ExitCode.INCONCLUSIVE)
        return self._finish(rollback.outcome, code, reason)

    def _finish(self, status: str, code: int, reason: str) -> int:
        self.state.status = status  # type: ignore[assignment]
        self.state.exit_code = int(code)
        self.state.reason = reason
        self.note(f"{status.upper()} (exit {int(code)}): {reason}")
        self.save()
        return int(code)


def _running(configs: dict[str, NodeConfig]) -> dict[str, dict[str, str | None] | None]:
    """What each node runs now (image id, boot id, ...), read in parallel; None for a node that does not answer
    (down, still booting): read_running_images fails for all when one does."""
    def read(name: str) -> dict[str, str | None] | None:
        try:
            return read_running_images({name: configs[name]})[name]
        except NodeError:
            return None

    if not configs:
        return {}
    with ThreadPoolExecutor(max_workers=len(configs), thread_name_prefix="rollout-read") as pool:
        return dict(zip(configs, pool.map(read, configs), strict=True))


def _clear(reports: Path) -> None:
    """A wave's gate run that a crash interrupted is run again from scratch: its partial reports go."""
    if reports.exists():
        shutil.rmtree(reports)
    reports.mkdir(parents=True)


def live_rig(inventory: Inventory, rig_name: str) -> Inventory:
    """A rig with static nodes as it is; a provided rig only while it runs (`hilt sim up`): a rollout outlives
    its commands (resume, abort), so it never starts a provider that would stop with it."""
    live = running_rig(inventory, rig_name)
    if live is None:
        rig = inventory.rig(rig_name)
        assert rig.provider is not None  # a rig with static nodes is always "running"
        raise ConfigError(f"{inventory.source}: rig {rig_name!r} is provided ({rig.provider.factory}) and not "
                          "running: start it first (for the sim: `hilt sim up`), a rollout does not start a rig "
                          "that would stop with it")
    return live
