"""`hilt rigs`: the rigs of rigs.yaml (what exists, who holds it, is it healthy), `check` and `schema`.

The root command (hilt/cli.py) mounts ``rigs_app`` as `hilt rigs`. A provided rig that runs now (`hilt sim up`,
a session's sim) shows its live nodes (hilt.rig.provider.running_rig); one that does not shows as provided at run
time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from hilt.errors import ConfigError, HiltError
from hilt.lease import open_store
from hilt.rig.check import check_chain, check_credentials, check_tls, suite_dirs
from hilt.rig.config import Inventory, NodeConfig, load_inventory
from hilt.rig.provider import running_rig
from hilt.util.cli_output import cell, fail, print_json, say, warning_line
from hilt.util.cli_output import stdout as console

RIGS_HELP = "inventory file (default: rigs.yaml, or $HILT_RIGS)"

rigs_app = typer.Typer(help="Rigs of rigs.yaml: what exists, who holds it, is it healthy.", invoke_without_command=True)


def _inventory(path: Path) -> Inventory:
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


def _node_status(rig_name: str, name: str, cfg: NodeConfig, holders: dict, store: Any) -> dict[str, Any]:
    """What `hilt rigs` shows of one node (the JSON keys documented in docs/ci.md)."""
    # start-up cost (~0.1 s, paramiko and the Redfish client): only `hilt rigs` talks to nodes
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


def _rig_listing(inventory: Inventory, only: str | None, holders: dict, store: Any) -> list[dict[str, Any]]:
    rigs: list[dict[str, Any]] = []
    jobs = []
    for rig_name, rig_cfg in inventory.rigs.items():
        if only and rig_name != only:
            continue
        rig_cfg = (running_rig(inventory, rig_name) or inventory).rig(rig_name)  # a provided rig: its live nodes
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


@rigs_app.command("check")
def rigs_check(file: Path = typer.Argument(Path("rigs.yaml"), envvar="HILT_RIGS",
                                           help="rigs.yaml to validate (default: rigs.yaml, or $HILT_RIGS)")) -> None:
    """Validate a rigs.yaml and the chain behind it: profiles, images, suites, credentials, and that every
    node's probe plan measures the gated entries of its baselines."""
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
    schema = Inventory.model_json_schema()
    schema.get("properties", {}).pop("source", None)  # set by the loader, not written in the file
    password = schema.get("$defs", {}).get("BmcConfig", {}).get("properties", {}).get("password")
    if password is not None:  # an editor flags a literal password as the loader would
        password["pattern"] = r"^(\$\{[A-Za-z_][A-Za-z0-9_]*\}|file:.+)$"
        password["description"] = "a reference, never the password: ${ENV_VAR} or file:/path"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hilt rigs.yaml"
    print_json(schema)
