"""The `hilt` command: run the suites, look at rigs, leases, nodes, baselines, history and the sim."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hilt.errors import ConfigError, HiltError
from hilt.exitcodes import ExitCode

app = typer.Typer(help="hilt: hardware-in-the-loop validation of GPU server images.", no_args_is_help=True,
                  add_completion=False)
rigs_app = typer.Typer(help="Rigs of rigs.yaml: what exists, who holds it, is it healthy.", invoke_without_command=True)
sim_app = typer.Typer(help="The simulated rack (needs root for network namespaces).", no_args_is_help=True)
sim_image_app = typer.Typer(help="Simulated rack images.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

RIGS_FILE = os.environ.get("HILT_RIGS", "rigs.yaml")


def _fail(message: str, code: int = ExitCode.USAGE_ERROR) -> None:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


# ---------------------------------------------------------------- run


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    rig: str = typer.Option(None, help="rig from rigs.yaml (default: its default_rig)"),
    image: str = typer.Option(None, help="image name or URL (default: the rig's default_image)"),
    rigs_file: Path = typer.Option(Path(RIGS_FILE), help="inventory file"),
    suites: Path = typer.Option(Path("suites"), help="suites directory"),
    no_boot: bool = typer.Option(False, help="do not boot; verify what runs"),
    reports: Path = typer.Option(Path("reports"), help="reports directory"),
) -> None:
    """Run the reference suites against a rig. Extra arguments go to pytest (e.g. -k nvlink, -n 2)."""
    import pytest

    args = [str(suites), "--rigs-file", str(rigs_file), "--hilt-reports", str(reports), "-p", "no:cacheprovider"]
    if rig:
        args += ["--rig", rig]
    if image:
        args += ["--image", image]
    if no_boot:
        args.append("--no-boot")
    args += list(ctx.args)
    raise typer.Exit(int(pytest.main(args)))


# ---------------------------------------------------------------- rigs


def _inventory(path: Path):  # noqa: ANN202
    from hilt.inventory import load_inventory

    try:
        return load_inventory(path)
    except ConfigError as exc:
        _fail(str(exc))


@rigs_app.callback()
def rigs(
    ctx: typer.Context,
    rig: str = typer.Option(None, help="only this rig"),
    rigs_file: Path = typer.Option(Path(RIGS_FILE), help="inventory file"),
) -> None:
    """Table of nodes: BMC power state, SSH reachable, lease holder, health."""
    if ctx.invoked_subcommand is not None:
        return
    from hilt.inventory import resolve_username
    from hilt.lease import open_store
    from hilt.node import probe_ssh

    inventory = _inventory(rigs_file)
    store = open_store(inventory.lease_store)
    holders = {node: lease for lease in store.list_leases() for node in lease.nodes}
    table = Table(title=f"rigs in {rigs_file}")
    for column in ("rig", "node", "profile", "BMC power", "SSH", "lease holder", "health"):
        table.add_column(column)

    def row(rig_name: str, name: str, cfg) -> list[str]:  # noqa: ANN001
        from hilt.bmc import Bmc

        try:
            with Bmc(cfg.bmc.url, resolve_username(cfg.bmc.username), cfg.bmc.password.resolve(),
                     system_id=cfg.bmc.system_id, verify=cfg.bmc.verify, auth=cfg.bmc.auth, name=name,
                     timeout_s=5) as bmc:
                power = bmc.power_state()
        except HiltError as exc:
            power = f"[red]unreachable[/red] ({str(exc)[:60]})"
        ssh = "[green]up[/green]" if probe_ssh(cfg.ssh.host, cfg.ssh.port) else "[red]down[/red]"
        key = f"{rig_name}/{name}"
        lease = holders.get(key)
        holder = f"{lease.holder.user}@{lease.holder.host} ({lease.purpose or ''})" if lease else "-"
        return [rig_name, name, cfg.profile, power, ssh, holder, store.health(key).state]

    jobs = []
    for rig_name, rig_cfg in inventory.rigs.items():
        if rig and rig_name != rig:
            continue
        rig_cfg = _running_rig(inventory, rig_name, rig_cfg)
        if not rig_cfg.nodes:
            table.add_row(rig_name, "-", "-", "-", "-", "-",
                          "nodes provided at run time" if rig_cfg.provider else "no nodes")
        jobs += [(rig_name, n, c) for n, c in rig_cfg.nodes.items()]
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(jobs)))) as pool:
        for cells in pool.map(lambda job: row(*job), jobs):
            table.add_row(*cells)
    console.print(table)


def _running_rig(inventory, rig_name: str, rig_cfg):  # noqa: ANN001, ANN202
    """A provided rig that is up right now (e.g. `hilt sim up`) shows its live nodes."""
    from hilt.inventory import load_provider, materialize

    if rig_cfg.provider is None:
        return rig_cfg
    provider = load_provider(rig_cfg.provider)
    running = getattr(provider, "running", None)
    live = running(rig_name, dict(rig_cfg.provider.options)) if running else None
    return materialize(inventory, rig_name, live).rig(rig_name) if live else rig_cfg


@rigs_app.command("check")
def rigs_check(file: Path = typer.Argument(Path(RIGS_FILE), help="rigs.yaml to validate")) -> None:
    """Validate a rigs.yaml and the chain behind it: profiles, images, suites, credentials, and that every
    node's probe plan measures the gated entries of its baselines."""
    from hilt.inventory import check_credentials
    from hilt.rigcheck import check_chain, suite_dirs

    inventory = _inventory(file)
    problems = check_credentials(inventory) + check_chain(inventory, suite_dirs(file))
    if problems:
        _fail("\n".join(problems))
    nodes = sum(len(r.nodes) for r in inventory.rigs.values())
    console.print(f"{file}: OK ({len(inventory.rigs)} rigs, {nodes} nodes, {len(inventory.images)} images)")


# ---------------------------------------------------------------- sim


@sim_app.command("up")
def sim_up(
    name: str = typer.Option("sim", help="sim name (several can run, on different subnets)"),
    nodes: int = typer.Option(4, help="number of nodes"),
    boot_delay: float = typer.Option(1.0, help="seconds a node takes to boot"),
    subnet: int = typer.Option(0, help="10.200.SUBNET.0/24 for the nodes"),
    profile: str = typer.Option("sim-4gpu", help="fabric profile of the nodes"),
) -> None:
    """Start a simulated rack in the background and print its nodes and images (rigs.yaml shape)."""
    import yaml

    from hilt.sim import lifecycle

    try:
        rig = lifecycle.sim_up(name, nodes=nodes, boot_delay_s=boot_delay, subnet=subnet, profile=profile)
    except HiltError as exc:
        _fail(str(exc), ExitCode.INCONCLUSIVE)
    console.print(yaml.safe_dump(rig, sort_keys=False), highlight=False)


@sim_app.command("down")
def sim_down(name: str = typer.Option("sim", help="sim name")) -> None:
    """Stop a simulated rack and remove everything it made (also a stale one of a crashed run)."""
    from hilt.sim import lifecycle

    removed = lifecycle.sim_down(name)
    console.print(f"sim {name}: down" + (f" (removed {len(removed)} items)" if removed else " (was not running)"))


@sim_app.command("status")
def sim_status(name: str = typer.Option(None, help="only this sim")) -> None:
    """Which simulated racks run (or were left stale), and what their nodes show."""
    import json

    from hilt.sim import lifecycle

    console.print_json(json.dumps(lifecycle.sim_status(name), default=str))


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
            console.print(f"{images[0].path}\nhost key to pin: {host_key}", highlight=False)
            return
        if arch != "x86_64":
            _fail(f"--arch {arch}: valid architectures are x86_64 and riscv64")
        from hilt.sim.image import STANDARD_IMAGES, build_image

        console.print(str(build_image(name, out, **STANDARD_IMAGES.get(name, {}))), highlight=False)
    except OSError as exc:
        _fail(f"{authorized_key}: {exc.strerror}")
    except HiltError as exc:
        _fail(str(exc))


# ---------------------------------------------------------------- assembly


def _mount_subapps() -> None:
    from hilt.gate import cli as gate_cli
    from hilt.lease import cli as lease_cli
    from hilt.report import cli as report_cli

    app.add_typer(lease_cli.leases_app, name="leases")
    app.add_typer(lease_cli.nodes_app, name="nodes")
    app.add_typer(gate_cli.baseline_app, name="baseline")
    app.add_typer(report_cli.report_app, name="report")
    app.add_typer(report_cli.history_app, name="history")


def _defaults_from_inventory() -> None:
    """Stores and directories named in rigs.yaml become the sub-commands' defaults."""
    from hilt.gate import cli as gate_cli
    from hilt.inventory import load_inventory
    from hilt.lease import cli as lease_cli
    from hilt.report import cli as report_cli

    if not Path(RIGS_FILE).exists():
        return
    try:
        inventory = load_inventory(RIGS_FILE)
    except ConfigError:
        return
    lease_cli.default_store_url = lambda: inventory.lease_store
    gate_cli.baselines_dir = Path(inventory.baselines_dir)
    report_cli.default_history_path = Path(inventory.history)


app.add_typer(rigs_app, name="rigs")
sim_app.add_typer(sim_image_app, name="image")
app.add_typer(sim_app, name="sim")
_mount_subapps()


def main() -> None:
    _defaults_from_inventory()
    try:
        app()
    except HiltError as exc:
        err_console.print(f"error: {exc}", highlight=False)
        sys.exit(ExitCode.USAGE_ERROR if isinstance(exc, ConfigError) else ExitCode.INCONCLUSIVE)


if __name__ == "__main__":
    main()
