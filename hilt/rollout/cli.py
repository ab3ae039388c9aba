"""`hilt rollout`: start a rollout, and `status`, `resume`, `abort` one by its id (docs/rollout.md).

Exit codes are docs/ci.md's: 0 every wave passed (or an abort's rollback is done), 1 a wave regressed (its nodes
were rolled back), 6 inconclusive (stopped; rolled back only with --on-inconclusive rollback), 4 bad input.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import typer

from hilt.errors import ConfigError
from hilt.rollout.record import summary_markdown
from hilt.rollout.state import StateStore
from hilt.util.cli_output import print_json, say

# hilt.rollout.engine is imported inside the commands (start-up cost): it brings provisioning (paramiko) and the
# pytest plugin (pytest), about 0.2 s that every other `hilt` command would pay at start-up.

rollout_app = typer.Typer(help="Roll a new image onto a rig wave by wave: canary first, gated against the baseline "
                          "and the nodes still on the old image; roll back on a regression.",
                          invoke_without_command=True)


def _store():  # noqa: ANN202 - StateStore
    return StateStore()


@rollout_app.callback()
def rollout(
    ctx: typer.Context,
    rig: str = typer.Option(None, envvar="HILT_RIG", help="rig from rigs.yaml (default: its default_rig)"),
    image: str = typer.Option(None, help="the new image (a name from rigs.yaml)"),
    canary: str = typer.Option("1", help="canary wave: a node count (1) or a share of the rig (25%)"),
    waves: str = typer.Option("100%", help="later waves: cumulative shares (or counts) of the rig, e.g. 50%,100%"),
    rollback_to: str = typer.Option(None, "--rollback-to", help="image to roll back to: a name from rigs.yaml, or "
                                    "'previous' (the history's last passed image per node); default: the image "
                                    "each node ran at the start"),
    on_inconclusive: str = typer.Option("stop", "--on-inconclusive", help="stop (keep the nodes as they are) or "
                                        "rollback"),
    rigs_file: Path = typer.Option(Path("rigs.yaml"), envvar="HILT_RIGS", help="inventory file"),
    reports: Path = typer.Option(Path("reports"), help="reports directory (rollout.json, rollout.md, the waves' "
                                 "runs under rollouts/ID/)"),
    suites: str = typer.Option(None, help="suites directory or file (default: hilt's reference suites)"),
    pytest_args: str = typer.Option("", "--pytest-args", help="extra arguments for each wave's gate run, e.g. "
                                    "\"-k 'test_nccl_tests' --probe-sizes 16M\""),
    lease_store: str = typer.Option(None, "--lease-store", envvar="HILT_LEASE_STORE", help="lease store URL"),
    lease_wait: float = typer.Option(0.0, "--lease-wait", help="seconds to queue for busy nodes"),
    lease_ttl: float = typer.Option(60.0, "--lease-ttl", help="lease time to live, renewed while the rollout runs"),
) -> None:
    """Start a rollout: prints its id, then each step; the state is kept for `status`, `resume` and `abort`."""
    if ctx.invoked_subcommand is not None:
        return
    if not image:
        raise ConfigError("hilt rollout: --image is required (the new image, a name from rigs.yaml)")
    _check_seconds(lease_ttl, "--lease-ttl", zero=False)
    _check_seconds(lease_wait, "--lease-wait", zero=True)
    _check_paths(reports, suites)
    from hilt.rollout.engine import Rollout  # start-up cost (see the top)

    try:
        args = shlex.split(pytest_args)
    except ValueError as exc:
        raise ConfigError(f"--pytest-args {pytest_args!r}: {exc}") from None
    _check_pytest_args(args)
    try:
        engine = Rollout.create(
            _store(), rigs_file=rigs_file, rig=rig, image=image, canary=canary, waves=waves, rollback_to=rollback_to,
            on_inconclusive=on_inconclusive, reports_dir=reports, lease_store=lease_store, lease_wait_s=lease_wait,
            lease_ttl_s=lease_ttl, suites=suites, pytest_args=args, say=say)
    except OSError as exc:  # the plan's first save: HILT_ROLLOUTS is a file, read-only, or the disk is full
        raise ConfigError(f"{exc.filename or _store().root}: cannot write the rollout state "
                          f"({exc.strerror or exc}); set HILT_ROLLOUTS to a writable directory") from None
    say(f"rollout {engine.state.id}: state in {engine.dir}")
    with _store().claim(engine.state.id):
        raise typer.Exit(engine.run())


def _check_seconds(value: float, option: str, zero: bool) -> None:
    """Before anything is planned: a NaN TTL reached the lease store as NULL and read as a damaged store."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ConfigError(f"{option} {value}: seconds, a finite number {'0 or more' if zero else 'above 0'}")


#: Options each wave's gate run gets from the rollout; given again in --pytest-args, pytest's last one wins: the
#: gate would judge another rig or image than the one booted, or write its summary where the rollout never reads.
_SET_BY_ROLLOUT = {"--rigs-file": "--rigs-file", "--rig": "--rig", "--image": "--image", "--hilt-reports": "--reports",
                   "--lease-store": "--lease-store", "--lease-ttl": "--lease-ttl", "--lease-wait": "--lease-wait"}


def _check_pytest_args(args: list[str]) -> None:
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in _SET_BY_ROLLOUT:
            raise ConfigError(f"--pytest-args: {name} is set by the rollout for each wave's gate run; give "
                              f"`hilt rollout {_SET_BY_ROLLOUT[name]}` instead")


def _check_paths(reports: Path, suites: str | None) -> None:
    """Before the canary boots: a wave's gate run writes under ``--reports`` and runs ``--suites``; either
    failing there would leave the canary on the new image with nothing judged."""
    existing = next((p for p in (reports, *reports.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"--reports {reports}: {existing} is not a directory; give a directory (default reports)")
    if suites is not None and not Path(suites.split("::")[0]).exists():
        raise ConfigError(f"--suites {suites}: no such file or directory; give a suites directory or test file "
                          "(default: hilt's reference suites)")


@rollout_app.command("status")
def status(rollout_id: str = typer.Argument(..., metavar="ID", help="the rollout id"),
           as_json: bool = typer.Option(False, "--json", help="print the state as JSON (docs/rollout.md)")) -> None:
    """Show a rollout's plan, waves, nodes (image before and now) and verdicts."""
    from hilt.rollout.engine import controller_alive  # start-up cost (see the top)

    store = _store()
    state = store.load(rollout_id)
    alive = controller_alive(state)
    if as_json:
        print_json({**state.model_dump(mode="json"), "state_file": str(store.path(rollout_id)),
                    "controller_alive": alive})
        return
    for line in summary_markdown(state).splitlines():
        say(line)
    if not state.finished:
        c = state.controller
        say(f"controller: pid {c.pid} on {c.host}, running" if alive and c else
            f"controller: not running; continue with `hilt rollout resume {state.id}` "
            f"or roll back with `hilt rollout abort {state.id} --why ...`")


@rollout_app.command("resume")
def resume(rollout_id: str = typer.Argument(..., metavar="ID", help="the rollout id")) -> None:
    """Continue a rollout whose controller stopped (a crash, a lost lease): nodes already on the new image are not
    booted again; an interrupted rollback is finished."""
    from hilt.rollout.engine import Rollout, controller_alive  # start-up cost (see the top)

    store = _store()
    store.load(rollout_id)  # a missing or damaged state is named before anything else
    with store.claim(rollout_id):
        state = store.load(rollout_id)  # read under the lock: another controller may have just moved it on
        if state.finished:
            raise ConfigError(f"rollout {rollout_id} is finished ({state.status}); nothing to resume")
        if controller_alive(state):
            assert state.controller is not None
            raise ConfigError(f"rollout {rollout_id} is running (pid {state.controller.pid} on "
                              f"{state.controller.host}); resume it only after that process is gone")
        state.event("resumed")
        raise typer.Exit(Rollout(state, store, say).run())


@rollout_app.command("abort")
def abort(rollout_id: str = typer.Argument(..., metavar="ID", help="the rollout id"),
          why: str = typer.Option(..., "--why", help="why (kept in the state and the record)")) -> None:
    """Roll back every node that got the new image to the image recorded for it; the rollout ends aborted."""
    from hilt.rollout.engine import Rollout, controller_alive  # start-up cost (see the top)

    if not why.strip() or not why.isprintable():
        raise ConfigError(f"--why {why!r}: say why in one line of text (kept in the state and rollout.md)")
    store = _store()
    store.load(rollout_id)
    with store.claim(rollout_id):
        state = store.load(rollout_id)
        if controller_alive(state):
            assert state.controller is not None
            raise ConfigError(f"rollout {rollout_id} is running (pid {state.controller.pid} on "
                              f"{state.controller.host}); stop that process first, then abort")
        if state.status in ("aborted", "regression") or (state.rollback is not None and state.rollback.ok):
            raise ConfigError(f"rollout {rollout_id} is finished ({state.status}) and was rolled back; "
                              "nothing to abort")
        raise typer.Exit(Rollout(state, store, say).abort(why))
