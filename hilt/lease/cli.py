"""`hilt leases` and `hilt nodes`: who holds what, and node health, on either store.

The lead mounts ``leases_app`` and ``nodes_app`` into the ``hilt`` command and sets ``default_store_url`` (the
URL from rigs.yaml) and, optionally, ``known_nodes`` (the inventory's nodes, so `hilt nodes` lists nodes that
never had a health record). ``python -m hilt.lease.cli`` runs both on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import typer
from rich.console import Console
from rich.table import Table

from hilt.errors import HiltError
from hilt.lease.model import HealthRecord, HealthState, Holder
from hilt.lease.store import LeaseStore
from hilt.lease.url import open_store
from hilt.util.cli_output import cell, fail, print_json, say
from hilt.util.locations import default_lease_store_url

#: the store URL when --lease-store is not given (the lead points it at rigs.yaml's setting); without a
#: rigs.yaml, the sqlite store in the state directory (hilt.util.locations), the same default rigs.yaml has
default_store_url: Callable[[], str] = default_lease_store_url
#: node names to list in `hilt nodes` even without a health record (the lead points it at the inventory)
known_nodes: Callable[[], list[str]] = lambda: []  # noqa: E731
#: raises ConfigError for a node name the inventory cannot have (the lead points it at rigs.yaml)
check_node_name: Callable[[str], None] = lambda node: None  # noqa: E731

console = Console()
STORE_HELP = ("Lease store URL: sqlite:///abs/path, sqlite://rel/path, etcd://host:port, etcds://host:port?ca=... "
              "(default: $HILT_LEASE_STORE, else rigs.yaml)")
JSON_HELP = "Print JSON (keys in docs/ci.md) instead of tables."
STORE_ENV = "HILT_LEASE_STORE"
STORE_OPTION = typer.Option(None, "--lease-store", envvar=STORE_ENV, help=STORE_HELP)

leases_app = typer.Typer(help="Who holds which nodes; release or break leases.", invoke_without_command=True,
                         no_args_is_help=False)
nodes_app = typer.Typer(help="Node health (good, unknown, bad, maintenance) and its history.",
                        invoke_without_command=True, no_args_is_help=False)


def _store(url: str | None) -> LeaseStore:
    return open_store(url or default_store_url())


def _fail(exc: HiltError) -> typer.Exit:
    fail(exc)  # one unwrapped line, the exit code of its kind (docs/ci.md)


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _me() -> str:
    return Holder.current().describe()


def _iso(t: float | None) -> str | None:
    """A store time for JSON: ISO 8601 UTC, or None."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None


def _holder_json(holder: Holder) -> dict:
    return {"user": holder.user, "host": holder.host, "pid": holder.pid, "ci_job": holder.ci_job,
            "ci_url": holder.ci_url, "purpose": holder.purpose, "text": holder.describe()}


# -- hilt leases --------------------------------------------------------------------------------------------
@leases_app.callback()
def leases_main(ctx: typer.Context,
                lease_store: str | None = STORE_OPTION,
                as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List leases (the default) or act on one."""
    ctx.obj = {"lease_store": lease_store}
    if ctx.invoked_subcommand is None:
        show_leases(lease_store, as_json)


def _url(ctx: typer.Context, given: str | None) -> str | None:
    return given or (ctx.obj or {}).get("lease_store")


@leases_app.command("list")
def leases_list(ctx: typer.Context,
                lease_store: str | None = STORE_OPTION,
                as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Who holds which nodes, since when, until when."""
    show_leases(_url(ctx, lease_store), as_json)


def show_leases(url: str | None, as_json: bool = False) -> None:
    try:
        with _store(url) as store:
            leases = store.list_leases()
            events = store.lease_events(limit=5)
    except HiltError as exc:
        raise _fail(exc) from None
    if as_json:
        print_json({
            "leases": [{"id": lease.id, "nodes": list(lease.nodes), "holder": _holder_json(lease.holder),
                        "purpose": lease.purpose, "acquired_at": _iso(lease.acquired_at),
                        "expires_at": _iso(lease.expires_at), "ttl_s": lease.ttl_s} for lease in leases],
            "events": [{"time": _iso(e.time), "kind": e.kind, "lease_id": e.lease_id, "nodes": list(e.nodes),
                        "holder": _holder_json(e.holder), "by": e.by, "why": e.why} for e in events],
        })
        return
    table = Table(title="Leases")
    table.add_column("ID", no_wrap=True)
    for column in ("Nodes", "Holder", "Purpose", "Since", "Expires"):
        table.add_column(column)
    for lease in leases:
        table.add_row(cell(lease.id), cell(", ".join(lease.nodes)), cell(lease.holder.describe()),
                      cell(lease.purpose), _when(lease.acquired_at), _when(lease.expires_at))
    if leases:
        console.print(table)
    else:
        say("no leases held")
    if events:
        recent = Table(title="Recent breaks and releases by others")
        for column in ("When", "What", "Lease", "Nodes", "Holder", "By", "Why"):
            recent.add_column(column)
        for e in events:
            recent.add_row(_when(e.time), cell(e.kind), cell(e.lease_id), cell(", ".join(e.nodes)),
                           cell(e.holder.describe()), cell(e.by), cell(e.why))
        console.print(recent)


@leases_app.command("release")
def leases_release(ctx: typer.Context, lease_id: str = typer.Argument(..., help="Lease ID (see `hilt leases`)"),
                   why: str | None = typer.Option(None, "--why",
                                                  help="Reason; required when the lease is not yours, recorded "
                                                       "and shown to its holder"),
                   by: str | None = typer.Option(None, "--by", help="Who releases it (default: you)"),
                   lease_store: str | None = STORE_OPTION) -> None:
    """Give a lease's nodes back: your own (e.g. after a crashed run), or someone else's with --why."""
    try:
        with _store(_url(ctx, lease_store)) as store:
            lease = store.get(lease_id)
            if lease is None:
                released = False
            elif _is_mine(lease.holder) and by is None:
                released = store.release(lease_id)
            else:
                if not why or not why.strip():
                    fail(f"lease {lease_id} is held by {lease.holder.describe()}, not by you: releasing it needs "
                         "--why \"...\" (recorded and shown to its holder)")
                released = store.release(lease_id, by=by or _me(), why=why)
    except HiltError as exc:
        raise _fail(exc) from None
    if not released:
        fail(f"no lease {lease_id} is held (already released or expired); see `hilt leases`")
    say(f"released lease {lease_id}" + (f" on {', '.join(lease.nodes)} held by {lease.holder.describe()}"
                                        if lease is not None and not _is_mine(lease.holder) else ""))


def _is_mine(holder: Holder) -> bool:
    """The same user on the same host: their own crashed run's lease is theirs to release without a word."""
    me = Holder.current()
    return holder.user == me.user and holder.host == me.host


@leases_app.command("break")
def leases_break(ctx: typer.Context, node: str = typer.Argument(..., help="A node of the lease to break"),
                 why: str = typer.Option(..., "--why", help="Reason, recorded and shown to the holder"),
                 by: str | None = typer.Option(None, "--by", help="Who breaks it (default: you)"),
                 lease_store: str | None = STORE_OPTION) -> None:
    """End someone's lease on NODE (all its nodes); their run stops with "lease lost"."""
    try:
        with _store(_url(ctx, lease_store)) as store:
            if not any(node in held.nodes for held in store.list_leases()):  # a name, not the store, is wrong
                fail(f"node {node} is not leased; nothing to break (see `hilt leases`)")
            lease = store.break_node(node, why, by or _me())
    except HiltError as exc:
        raise _fail(exc) from None
    say(f"broke lease {lease.id} on {', '.join(lease.nodes)} held by {lease.holder.describe()}")


# -- hilt nodes ---------------------------------------------------------------------------------------------
@nodes_app.callback()
def nodes_main(ctx: typer.Context,
               lease_store: str | None = STORE_OPTION,
               history: int = typer.Option(10, "--history", help="How many recent transitions to show"),
               as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List node health (the default) or set it."""
    ctx.obj = {"lease_store": lease_store}
    if ctx.invoked_subcommand is None:
        show_nodes(lease_store, history, as_json)


def show_nodes(url: str | None, history: int = 10, as_json: bool = False) -> None:
    try:
        with _store(url) as store:
            records = {r.node: r for r in store.all_health()}
            for node in known_nodes():
                records.setdefault(node, HealthRecord.initial(node))
            holders = {node: lease for lease in store.list_leases() for node in lease.nodes}
            transitions = store.health_history(limit=history) if history > 0 else []
    except HiltError as exc:
        raise _fail(exc) from None
    if as_json:
        print_json({
            "nodes": [{"node": r.node, "health": r.state.value, "since": _iso(r.since), "reason": r.reason,
                       "consecutive_failures": r.consecutive_failures,
                       "lease_id": holders[r.node].id if r.node in holders else None,
                       "leased_by": holders[r.node].holder.describe() if r.node in holders else None}
                      for r in (records[n] for n in sorted(records))],
            "history": [{"time": _iso(t.time), "node": t.node, "from": t.from_state.value, "to": t.to_state.value,
                         "reason": t.reason, "session": t.session, "by": t.by} for t in transitions],
        })
        return
    colour = {"good": "green", "unknown": "yellow", "bad": "red", "maintenance": "blue"}
    table = Table(title="Nodes")
    for column in ("Node", "Health", "Since", "Failures", "Reason", "Leased by"):
        table.add_column(column)
    for node in sorted(records):
        r = records[node]
        lease = holders.get(node)
        table.add_row(cell(node), cell(r.state.value, colour.get(r.state.value, "")), _when(r.since),
                      str(r.consecutive_failures), cell(r.reason),
                      cell(f"{lease.holder.describe()} ({lease.id})") if lease else "")
    if records:
        console.print(table)
    else:
        say("no nodes known")
    if transitions:
        table = Table(title="Health history (newest first)")
        for column in ("When", "Node", "From", "To", "Reason", "Session / by"):
            table.add_column(column)
        for t in transitions:
            table.add_row(_when(t.time), cell(t.node), t.from_state.value, t.to_state.value, cell(t.reason),
                          cell(t.session or t.by or ""))
        console.print(table)


@nodes_app.command("list")
def nodes_list(ctx: typer.Context,
               lease_store: str | None = STORE_OPTION,
               history: int = typer.Option(10, "--history", help="How many recent transitions to show"),
               as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Node health and recent transitions."""
    show_nodes(_url(ctx, lease_store), history, as_json)


@nodes_app.command("set-health")
def nodes_set_health(ctx: typer.Context, node: str = typer.Argument(...),
                     state: str = typer.Argument(..., help="good, unknown, bad or maintenance"),
                     why: str = typer.Option(..., "--why", help="Reason, recorded in the history"),
                     by: str | None = typer.Option(None, "--by", help="Who decides (default: you)"),
                     lease_store: str | None = STORE_OPTION) -> None:
    """Set a node's health by hand: the only way back from bad or maintenance."""
    try:
        parsed = HealthState.parse(state)
        check_node_name(node)
        with _store(_url(ctx, lease_store)) as store:
            record = store.set_health(node, parsed, why, by or _me())
    except HiltError as exc:
        raise _fail(exc) from None
    say(f"{node} is now {record.state.value}: {record.reason}")



def main() -> None:
    app = typer.Typer(help="hilt leases and node health")
    app.add_typer(leases_app, name="leases")
    app.add_typer(nodes_app, name="nodes")
    app()


if __name__ == "__main__":
    main()
