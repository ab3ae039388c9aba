"""The `hilt` command: run the suites, look at rigs, leases, nodes, baselines, history and the sim."""

from __future__ import annotations

import os
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from hilt.errors import ConfigError, HiltError
from hilt.exitcodes import ExitCode, exit_code_for
from hilt.util.cli_output import cell, error_line, fail, print_json, say
from hilt.util.cli_output import stdout as console


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Command-line parsing errors: typer's own (vendored click) and click's, whichever this typer raises."""
    kinds: list[type[BaseException]] = [getattr(typer, "TyperException", None) or typer.BadParameter]
    try:
        import click

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
rigs_app = typer.Typer(help="Rigs of rigs.yaml: what exists, who holds it, is it healthy.", invoke_without_command=True)
sim_app = typer.Typer(help="The simulated rack (needs root for network namespaces).", no_args_is_help=True)
sim_image_app = typer.Typer(help="Simulated rack images.", no_args_is_help=True)

RIGS_FILE = os.environ.get("HILT_RIGS", "rigs.yaml")
RIGS_HELP = "inventory file (default: rigs.yaml, or $HILT_RIGS)"


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("hilt")
        except PackageNotFoundError:  # run from a checkout that was never installed
            from hilt import __version__ as number
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
    import pytest

    target = [str(suites)] if suites is not None else ["--pyargs", "hilt.suites"]
    # `hilt run` always means a rig session, also for a team's conftest-free suite directory
    args = [*target, "-o", "hilt_rig_suites=true", "--rigs-file", str(rigs_file), "--hilt-reports", str(reports),
            "-p", "no:cacheprovider", "--gate"]  # a hilt run is a release gate, whatever -k selects
    if rig:
        args += ["--rig", rig]
    if image:
        args += ["--image", image]
    if lease_store:
        args += ["--lease-store", lease_store]
    if no_boot:
        args.append("--no-boot")
    args += list(ctx.args)
    if not any(a in ("-n", "--numprocesses", "no:xdist") or a.startswith(("-n", "--numprocesses=")) for a in ctx.args):
        args += ["-n", "1", "--workers-from-lease"]  # one xdist worker per leased node: the nodes run side by side
    raise typer.Exit(int(pytest.main(args)))


# ---------------------------------------------------------------- rigs


def _inventory(path: Path):  # noqa: ANN202
    from hilt.rig.config import load_inventory

    try:
        return load_inventory(path)
    except ConfigError as exc:
        fail(exc)


@rigs_app.callback()
def rigs(
    ctx: typer.Context,
    rig: str = typer.Option(None, help="only this rig (an unknown name is an error)"),
    rigs_file: Path = typer.Option(Path("rigs.yaml"), envvar="HILT_RIGS", help=RIGS_HELP),
    as_json: bool = typer.Option(False, "--json", help="print JSON (keys in docs/ci.md) instead of a table"),
) -> None:
    """Table of nodes: BMC power state, SSH reachable, lease holder, health."""
    if ctx.invoked_subcommand is not None:
        return
    from hilt.lease import open_store

    inventory = _inventory(rigs_file)
    if rig:
        try:
            inventory.rig(rig)
        except ConfigError as exc:
            fail(exc)
    try:
        with open_store(inventory.lease_store) as store:
            holders = {node: lease for lease in store.list_leases() for node in lease.nodes}
            listing = _rig_listing(inventory, rig, holders, store)
    except HiltError as exc:
        fail(exc)
    if as_json:
        print_json({"rigs_file": str(rigs_file), "rigs": listing})
        return
    console.print(_rigs_table(rigs_file, listing))


def _node_status(rig_name: str, name: str, cfg: Any, holders: dict, store: Any) -> dict[str, Any]:
    """What `hilt rigs` shows of one node (the JSON keys documented in docs/ci.md)."""
    from hilt.bmc import Bmc
    from hilt.node.ssh import probe_ssh

    power, power_error = None, None
    try:
        with Bmc.from_config(cfg, name=name, timeout_s=5) as bmc:
            power = bmc.power_state()
    except HiltError as exc:
        power_error = str(exc)
    key = f"{rig_name}/{name}"
    lease = holders.get(key)
    return {"name": name, "profile": cfg.profile, "power": power, "power_error": power_error,
            "ssh": probe_ssh(cfg.ssh.host, cfg.ssh.port), "health": store.health(key).state.value,
            "lease": {"id": lease.id, "holder": lease.holder.describe(), "purpose": lease.purpose} if lease else None}


def _rig_listing(inventory: Any, only: str | None, holders: dict, store: Any) -> list[dict[str, Any]]:
    rigs: list[dict[str, Any]] = []
    jobs = []
    for rig_name, rig_cfg in inventory.rigs.items():
        if only and rig_name != only:
            continue
        rig_cfg = _running_rig(inventory, rig_name, rig_cfg)
        rigs.append({"name": rig_name, "provided": rig_cfg.provider is not None, "nodes": []})
        jobs += [(rigs[-1], rig_name, n, c) for n, c in rig_cfg.nodes.items()]
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(jobs)))) as pool:
        statuses = list(pool.map(lambda job: _node_status(*job[1:], holders, store), jobs))
    for (entry, *_rest), status in zip(jobs, statuses, strict=True):
        entry["nodes"].append(status)
    return rigs


def _rigs_table(rigs_file: Path, listing: list[dict[str, Any]]) -> Table:
    table = Table(title=cell(f"rigs in {rigs_file}"))
    for column in ("rig", "node", "profile", "BMC power", "SSH", "lease holder", "health"):
        table.add_column(column)
    for rig in listing:
        if not rig["nodes"]:
            table.add_row(cell(rig["name"]), "-", "-", "-", "-", "-",
                          "nodes provided at run time" if rig["provided"] else "no nodes")
        for node in rig["nodes"]:
            power = (cell(node["power"]) if node["power_error"] is None
                     else cell("unreachable", "red") + cell(f" ({node['power_error'][:60]})"))
            lease = node["lease"]
            table.add_row(cell(rig["name"]), cell(node["name"]), cell(node["profile"]), power,
                          cell("up", "green") if node["ssh"] else cell("down", "red"),
                          cell(f"{lease['holder']} ({lease['purpose']})") if lease else "-", cell(node["health"]))
    return table


def _running_rig(inventory, rig_name: str, rig_cfg):  # noqa: ANN001, ANN202
    """A provided rig that is up right now (e.g. `hilt sim up`) shows its live nodes."""
    from hilt.rig.config import load_provider, materialize

    if rig_cfg.provider is None:
        return rig_cfg
    provider = load_provider(rig_cfg.provider)
    running = getattr(provider, "running", None)
    live = running(rig_name, dict(rig_cfg.provider.options)) if running else None
    return materialize(inventory, rig_name, live).rig(rig_name) if live else rig_cfg


@rigs_app.command("check")
def rigs_check(file: Path = typer.Argument(Path("rigs.yaml"), envvar="HILT_RIGS",
                                           help="rigs.yaml to validate (default: rigs.yaml, or $HILT_RIGS)")) -> None:
    """Validate a rigs.yaml and the chain behind it: profiles, images, suites, credentials, and that every
    node's probe plan measures the gated entries of its baselines."""
    from hilt.rig.check import check_chain, suite_dirs
    from hilt.rig.config import check_credentials, check_tls
    from hilt.util.cli_output import warning_line

    inventory = _inventory(file)
    tls_problems, tls_warnings = check_tls(inventory)
    for warning in tls_warnings:  # verify: false is allowed, never silent
        warning_line(warning)
    problems = check_credentials(inventory) + tls_problems + check_chain(inventory, suite_dirs(file))
    if problems:
        fail("\n".join(problems))
    nodes = sum(len(r.nodes) for r in inventory.rigs.values())
    say(f"{file}: OK ({len(inventory.rigs)} rigs, {nodes} nodes, {len(inventory.images)} images)")


@rigs_app.command("schema")
def rigs_schema() -> None:
    """Print the JSON schema of rigs.yaml, for editors (see docs/rigs.md for the yaml-language-server line)."""
    from hilt.rig.config import Inventory

    schema = Inventory.model_json_schema()
    schema.get("properties", {}).pop("source", None)  # set by the loader, not written in the file
    password = schema.get("$defs", {}).get("BmcConfig", {}).get("properties", {}).get("password")
    if password is not None:  # an editor flags a literal password as the loader would
        password["pattern"] = r"^(\$\{[A-Za-z_][A-Za-z0-9_]*\}|file:.+)$"
        password["description"] = "a reference, never the password: ${ENV_VAR} or file:/path"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hilt rigs.yaml"
    print_json(schema)


# ---------------------------------------------------------------- sim


@sim_app.command("up")
def sim_up(
    name: str = typer.Option("sim", help="sim name (several can run, on different subnets)"),
    nodes: int = typer.Option(4, help="number of nodes"),
    boot_delay: float = typer.Option(1.0, help="seconds a node takes to boot"),
    subnet: int = typer.Option(0, help="10.200.SUBNET.0/24 for the nodes"),
    profile: str = typer.Option("sim-4gpu", help="fabric profile of the nodes"),
    image: str = typer.Option(None, help="boot this image (good, regressed, ...) on every node; returns once each "
                              "is verified (exit 6 naming a node that is not): what `hilt rollout` starts from"),
) -> None:
    """Start a simulated rack in the background and print its nodes and images (rigs.yaml shape)."""
    import yaml

    from hilt.sim import lifecycle
    from hilt.sim.image import STANDARD_IMAGES

    if image is not None and image not in STANDARD_IMAGES:
        fail(ConfigError(f"--image {image}: not an image of the sim; its images: {', '.join(STANDARD_IMAGES)}"))
    try:
        rig = lifecycle.sim_up(name, nodes=nodes, boot_delay_s=boot_delay, subnet=subnet, profile=profile)
    except HiltError as exc:
        fail(exc)
    console.print(yaml.safe_dump(rig, sort_keys=False), markup=False, soft_wrap=True)
    if image:
        raise typer.Exit(_boot_sim(name, rig, image))


def _boot_sim(name: str, rig: dict[str, Any], image: str) -> int:
    """Boot ``image`` on every node of the sim just started and verify each (as a run's boot does); the sim stays
    up whatever happens, so a failed node can be looked at (`hilt sim status`) before `hilt sim down`."""
    from hilt.provision.boot import provision
    from hilt.rig.config import Inventory, materialize

    inventory = materialize(Inventory.model_validate({"default_rig": name, "rigs": {name: {}}}), name, rig)
    image_name, image_cfg = inventory.image(image)  # an unknown image: a usage error naming the known ones
    nodes = inventory.rig(name).nodes
    results = provision(nodes, image_name, image_cfg, boot=True, progress=lambda node, what: say(f"{node}: {what}"))
    failed = [f"node {node}: {result.error}" for node, result in sorted(results.items()) if not result.ok]
    if failed:
        error_line(f"sim {name}: {image_name} not verified on " + "; ".join(failed))
        return int(ExitCode.INCONCLUSIVE)
    say(f"sim {name}: {image_name} runs on {', '.join(sorted(results))}, each verified")
    return int(ExitCode.PASS)


@sim_app.command("down")
def sim_down(name: str = typer.Option("sim", help="sim name")) -> None:
    """Stop a simulated rack and remove everything it made (also a stale one of a crashed run)."""
    from hilt.sim import lifecycle

    removed = lifecycle.sim_down(name)
    say(f"sim {name}: down" + (f" (removed {len(removed)} items)" if removed else " (was not running)"))


@sim_app.command("status")
def sim_status(name: str = typer.Option(None, help="only this sim")) -> None:
    """Which simulated racks run (or were left stale), and what their nodes show (JSON)."""
    from hilt.sim import lifecycle

    print_json(lifecycle.sim_status(name))


@sim_image_app.command("build")
def sim_image_build(
    name: str = typer.Argument(..., help="image name: good, regressed, broken, links-down, ... or a new one"),
    out: Path = typer.Option(Path("reports/images"), help="output directory"),
    arch: str = typer.Option("x86_64", help="x86_64 (namespace rack) or riscv64 (QEMU rack: kernel + initramfs)"),
    authorized_key: Path = typer.Option(Path("~/.ssh/id_ed25519.pub"), help="riscv64: root's authorized key"),
) -> None:
    """Build a simulated rack image: a tarball with a manifest and a root overlay (or a kernel and initramfs)."""
    try:
        if arch == "riscv64":
            from hilt.sim.riscv.image import build_images

            key = authorized_key.expanduser().read_text().strip()
            images, host_key = build_images(out, authorized_key=key, names=[name])
            say(f"{images[0].path}\nhost key to pin: {host_key}")
            return
        if arch != "x86_64":
            fail(f"--arch {arch}: valid architectures are x86_64 and riscv64")
        from hilt.sim.image import STANDARD_IMAGES, build_image

        say(build_image(name, out, **STANDARD_IMAGES.get(name, {})))
    except OSError as exc:
        fail(f"{authorized_key}: {exc.strerror}")
    except HiltError as exc:
        fail(exc)


# ---------------------------------------------------------------- assembly


def _mount_subapps() -> None:
    from hilt.gate import cli as gate_cli
    from hilt.lease import cli as lease_cli
    from hilt.report import cli as report_cli
    from hilt.rollout.cli import rollout_app

    app.add_typer(rollout_app, name="rollout")
    app.add_typer(lease_cli.leases_app, name="leases")
    app.add_typer(lease_cli.nodes_app, name="nodes")
    app.add_typer(gate_cli.baseline_app, name="baseline")
    app.add_typer(report_cli.report_app, name="report")
    app.add_typer(report_cli.history_app, name="history")


def _defaults_from_inventory(argv: list[str] | None = None) -> None:
    """Stores and directories named in rigs.yaml become the sub-commands' defaults.

    ``argv``: the command line, to refuse at once a command whose defaults a broken rigs.yaml names."""
    from hilt.gate import cli as gate_cli
    from hilt.lease import cli as lease_cli
    from hilt.report import cli as report_cli
    from hilt.rig.config import load_inventory

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
    from hilt.util.cli_output import warning_line

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
    from hilt.lease import cli as lease_cli

    def refuse() -> str:
        raise ConfigError(f"{problem} (the lease store is named there; fix the file or pass --lease-store)")

    lease_cli.default_store_url = refuse


# sub-commands whose defaults come from rigs.yaml, and the option that names the one default each needs instead
_FILE_DEFAULTS = {"baseline": ("the baselines directory", None), "report": ("the run history", "--history"),
                  "history": ("the run history", "--history")}


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


app.add_typer(rigs_app, name="rigs")
sim_app.add_typer(sim_image_app, name="image")
app.add_typer(sim_app, name="sim")
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
