"""The `hilt` command: run the suites, look at rigs, leases, nodes, baselines, history and the sim."""

from __future__ import annotations

import os
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from hilt import __version__
from hilt.errors import ConfigError, HiltError
from hilt.exitcodes import ExitCode, exit_code_for
from hilt.gate import cli as gate_cli
from hilt.k8s.cli import k8s_app
from hilt.lease import cli as lease_cli
from hilt.report import cli as report_cli
from hilt.rig.cli import RIGS_HELP, rigs_app
from hilt.rig.config import load_inventory
from hilt.rollout.cli import rollout_app
from hilt.sim.cli import sim_app
from hilt.util.cli_output import error_line, say, warning_line
from hilt.util.cli_output import stdout as console


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Command-line parsing errors: typer's own (vendored click) and click's, whichever this typer raises."""
    kinds: list[type[BaseException]] = [getattr(typer, "TyperException", None) or typer.BadParameter]
    try:
        import click  # typer < 0.24 raises click's own errors; newer typer carries a copy and may lack click

        kinds.append(click.ClickException)
    except ImportError:  # typer >= 0.24 carries its own copy of click
        pass
    return tuple(kinds)


class HiltGroup(TyperGroup):
    """The root command: every sub-command's errors end here as one line and one exit code (docs/ci.md).

    Parsing errors (unknown option, bad value, missing argument) are usage errors like a bad rigs.yaml, where
    click would exit 2, which pytest and hilt use for "interrupted"; a HiltError that a sub-command did not
    handle gets the code of its kind; anything else is an internal error, shown with its traceback.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            result = super().main(args=args, prog_name=prog_name or "hilt", complete_var=complete_var,
                                  standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except _usage_errors() as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                text = exc.format_message()  # the help text (typer's rich help prints itself)
                if text:
                    console.print(text, markup=False, soft_wrap=True)
            else:
                context = getattr(exc, "ctx", None)
                where = f"{context.command_path}: " if context is not None else ""
                error_line(f"{where}{exc.format_message()}")
            code = ExitCode.USAGE_ERROR
        except typer.Abort:
            code = ExitCode.INTERRUPTED
        except HiltError as exc:
            error_line(exc)
            code = exit_code_for(exc)
        except Exception as exc:  # a bug: keep the traceback, and the documented code
            traceback.print_exc()
            error_line(f"internal error: {type(exc).__name__}: {exc}")
            code = ExitCode.INTERNAL_ERROR
        if code == 130:  # typer's code for Ctrl-C
            code = ExitCode.INTERRUPTED
        if standalone_mode:
            sys.exit(int(code))
        return int(code)


app = typer.Typer(help="hilt: hardware-in-the-loop validation of GPU server images.", no_args_is_help=True,
                  add_completion=False, cls=HiltGroup)

RIGS_FILE = os.environ.get("HILT_RIGS", "rigs.yaml")


def _version(value: bool) -> None:
    if value:
        try:
            number = version("hilt")
        except PackageNotFoundError:  # run from a checkout that was never installed
            number = __version__
        say(f"hilt {number}")
        raise typer.Exit()


@app.callback()
def root(version_flag: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print hilt's version and exit.")) -> None:
    """hilt: hardware-in-the-loop validation of GPU server images."""


# ---------------------------------------------------------------- run


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    rig: str = typer.Option(None, envvar="HILT_RIG", help="rig from rigs.yaml (default: $HILT_RIG, else its "
                            "default_rig)"),
    image: str = typer.Option(None, envvar="HILT_IMAGE", help="image name or URL (default: $HILT_IMAGE, else "
                              "the rig's default_image)"),
    rigs_file: Path = typer.Option(Path("rigs.yaml"), envvar="HILT_RIGS", help=RIGS_HELP),
    suites: Path = typer.Option(None, help="suites directory or file (default: hilt's reference suites)"),
    no_boot: bool = typer.Option(False, help="do not boot; verify what runs"),
    reports: Path = typer.Option(Path("reports"), help="reports directory"),
    lease_store: str = typer.Option(None, "--lease-store", envvar="HILT_LEASE_STORE",
                                    help="lease store URL (default: $HILT_LEASE_STORE, else rigs.yaml)"),
) -> None:
    """Run suites against a rig (default: the reference suites, hilt.suites). Extra arguments go to pytest."""
    # start-up cost (~0.1 s): only `hilt run` needs pytest (and the plugin's package imports it); every other
    # command starts without it
    import pytest

    from hilt.pytestplugin.command import gate_run_args

    args = gate_run_args(suites=suites, rigs_file=rigs_file, reports=reports, rig=rig, image=image,
                         lease_store=lease_store, no_boot=no_boot, extra=ctx.args)
    raise typer.Exit(int(pytest.main(args)))


# ---------------------------------------------------------------- assembly


def _mount_subapps() -> None:
    """Every command group lives in its package; the root command only mounts them."""
    app.add_typer(rigs_app, name="rigs")
    app.add_typer(sim_app, name="sim")
    app.add_typer(rollout_app, name="rollout")
    app.add_typer(k8s_app, name="k8s")
    app.add_typer(lease_cli.leases_app, name="leases")
    app.add_typer(lease_cli.nodes_app, name="nodes")
    app.add_typer(gate_cli.baseline_app, name="baseline")
    app.add_typer(report_cli.report_app, name="report")
    app.add_typer(report_cli.history_app, name="history")


def _defaults_from_inventory(argv: list[str] | None = None) -> None:
    """Stores and directories named in rigs.yaml become the sub-commands' defaults.

    ``argv``: the command line, to refuse at once a command whose defaults a broken rigs.yaml names."""
    if not Path(RIGS_FILE).exists() and "HILT_RIGS" not in os.environ:
        return
    try:
        inventory = load_inventory(RIGS_FILE)
    except ConfigError as exc:
        _refuse_default_store(exc)
        _refuse_file_defaults(exc, argv or [])
        return
    lease_cli.default_store_url = lambda: inventory.lease_store
    lease_cli.known_nodes = lambda: _static_nodes(inventory)
    lease_cli.check_node_name = lambda node: _check_node_name(inventory, node)
    gate_cli.baselines_dir = Path(inventory.baselines_dir)
    report_cli.default_history_path = inventory.history
    report_cli.default_history_password = inventory.history_password
    _note_old_history(inventory.history_note, argv or [])


def _note_old_history(note: str | None, argv: list[str]) -> None:
    """The history is still at its old default place: say so where it is used (report, history, run)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if note and command in ("report", "history") and "--history" not in argv:
        warning_line(note)


def _static_nodes(inventory: Any) -> list[str]:
    return [f"{rig}/{node}" for rig, cfg in inventory.rigs.items() for node in cfg.nodes]


def _check_node_name(inventory: Any, node: str) -> None:
    """`rig/node` of rigs.yaml; a provided rig's nodes are known only at run time, so any name under it goes."""
    rig, _, name = node.partition("/")
    known = ", ".join(_static_nodes(inventory)) or "none"
    if rig not in inventory.rigs:
        raise ConfigError(f"{inventory.source}: node {node!r}: unknown rig {rig!r} (nodes are rig/node; "
                          f"known nodes: {known})")
    if inventory.rigs[rig].provider is None and name not in inventory.rigs[rig].nodes:
        raise ConfigError(f"{inventory.source}: unknown node {node!r}; known nodes: {known}")


def _refuse_default_store(problem: ConfigError) -> None:
    """A broken rigs file: `hilt --help` still works, but a command that needs the store it names fails with
    the file's error rather than silently using another store (a second holder could be granted the nodes)."""
    def refuse() -> str:
        raise ConfigError(f"{problem} (the lease store is named there; fix the file or pass --lease-store)")

    lease_cli.default_store_url = refuse


# sub-commands whose defaults come from rigs.yaml, and the option that names the one default each needs instead
_FILE_DEFAULTS = {"baseline": ("the baselines directory", None), "report": ("the run history", "--history"),
                  "history": ("the run history", "--history"), "k8s": ("the run history", "--history")}


def _refuse_file_defaults(problem: ConfigError, argv: list[str]) -> None:
    """A broken rigs file: `hilt baseline/report/history` fail with the file's error (exit 4) rather than use
    baselines/ and reports/history.sqlite behind the user's back, unless only asked for help or told where
    to look (--history)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command not in _FILE_DEFAULTS or "--help" in argv:
        return
    what, option = _FILE_DEFAULTS[command]
    if option and any(arg == option or arg.startswith(f"{option}=") for arg in argv):
        return
    instead = f" or pass {option}" if option else ""
    raise ConfigError(f"{problem} (hilt {command} takes {what} from there; fix the file{instead})")


_mount_subapps()


def main() -> None:
    try:
        _defaults_from_inventory(sys.argv[1:])
    except HiltError as exc:
        error_line(exc)
        sys.exit(int(exit_code_for(exc)))
    app(prog_name="hilt")


if __name__ == "__main__":
    main()
