"""``hilt k8s``: what hilt would tell Kubernetes about a run's nodes (docs/kubernetes.md)."""

from __future__ import annotations

import typer
from rich.table import Table

from hilt.errors import ConfigError, HiltError
from hilt.k8s.features import qualified
from hilt.k8s.labels import verified_facts
from hilt.profiles.model import Profile, load_profile
from hilt.report import cli as report_cli
from hilt.util.cli_output import cell, fail, print_json, say, warning_line
from hilt.util.cli_output import stdout as console

k8s_app = typer.Typer(help="The hand-off to Kubernetes: labels of verified facts.", no_args_is_help=True)

_HISTORY_HELP = "History: a SQLite file or postgresql://[user@]host/db (default from rigs.yaml)."


def _profile(name: str | None) -> Profile | None:
    if not name:
        return None
    try:
        return load_profile(name)
    except ConfigError as exc:
        warning_line(f"profile {name} not loaded ({exc}): labels that need it are left out")
        return None


@k8s_app.command("labels")
def labels(
    run_id: str = typer.Argument(..., metavar="RUN", help="A run id, as `hilt history list` shows them."),
    node: str | None = typer.Option(None, "--node", help="Only this node of the run."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    history: str | None = typer.Option(None, "--history", help=_HISTORY_HELP),
) -> None:
    """The labels hilt publishes for RUN's nodes: only facts that run verified (each with the checks it rests on)."""
    try:
        record = report_cli.history_store(history).run(run_id)
        if record is None:
            raise ConfigError(f"no run {run_id!r} in the history; `hilt history list` shows the run ids")
        names = [n.name for n in record.nodes]
        if node is not None and node not in names:
            raise ConfigError(f"run {run_id} has no node {node!r}; its nodes: {', '.join(names) or 'none'}")
    except HiltError as exc:
        fail(exc)
    facts = {name: verified_facts(record, name, _profile(record.node_profiles.get(name)))
             for name in names if node in (None, name)}
    if as_json:
        print_json({"run_id": record.run_id, "gate": record.gate.outcome if record.gate else None, "nodes": {
            name: {"labels": {qualified(f.name): f.value for f in node_facts},
                   "facts": [{"name": f.name, "key": qualified(f.name), "value": f.value,
                              "checks": [str(c) for c in f.checks]} for f in node_facts]}
            for name, node_facts in facts.items()}})
        return
    table = Table()
    for column in ("node", "label", "value", "verified by"):
        table.add_column(column)
    for name, node_facts in facts.items():
        if not node_facts:
            table.add_row(cell(name), cell("(none)"), cell(""), cell("no fact of this node was verified"))
        for fact in node_facts:
            table.add_row(cell(name), cell(qualified(fact.name)), cell(fact.value),
                          cell(", ".join(str(c) for c in fact.checks)))
    console.print(table)
    gate = record.gate.outcome if record.gate else "none"
    say(f"run {record.run_id}: gate {gate}; {sum(len(f) for f in facts.values())} labels on {len(facts)} node(s)")
