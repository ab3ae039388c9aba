"""The rollout as a record: ``reports/rollout.json`` (the state, for machines) and ``reports/rollout.md``, the
summary a person reads in ten seconds: the outcome and why, then one line per wave and one per node (what it ran
before, what it runs now, what was rolled back). Both are rewritten after every wave, so a crashed controller
still leaves them."""

from __future__ import annotations

import logging
from pathlib import Path

from hilt.rollout.state import RolloutState

log = logging.getLogger(__name__)

_NOW = {"old": "old image", "booting": "booting the new image", "new": "new image",
        "rolling_back": "rolling back", "rolled_back": "rolled back", "rollback_failed": "ROLLBACK FAILED"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def headline(state: RolloutState) -> str:
    status = state.status.upper() if state.finished else "RUNNING (or interrupted)"
    code = f" (exit {state.exit_code})" if state.exit_code is not None else ""
    return f"rollout {state.id}: {status}{code}: {state.image} on rig {state.rig}"


def summary_markdown(state: RolloutState) -> str:
    lines = [f"# {headline(state)}", ""]
    if state.reason:
        lines += [_cell(state.reason), ""]
    lines += [f"canary {state.canary}, waves {state.waves_option}, on inconclusive: {state.on_inconclusive}; "
              f"started {state.created_at}, last step {state.updated_at or '-'}", ""]
    failing = [c for w in state.waves for c in w.checks if c.outcome == "regression"]
    if failing:
        lines += ["## Regressions", ""]
        lines += [f"- **{_cell(c.metric)}** on **{c.node}** vs {c.against}: {_cell(c.reason)}" for c in failing]
        lines.append("")
    lines += ["## Waves", "", "| wave | new nodes | control | verdict | run | why |",
              "| --- | --- | --- | --- | --- | --- |"]
    for w in state.waves:
        lines.append(f"| {w.name} | {', '.join(w.nodes)} | {', '.join(w.control) or '-'} | {w.status} | "
                     f"{', '.join(w.runs) or w.run_id or '-'} | {_cell(w.reason or '')[:300]} |")
    lines += ["", "## Nodes", "", "| node | wave | before | now | rollback |", "| --- | --- | --- | --- | --- |"]
    for n in state.nodes.values():
        before = n.before.image or n.before.image_id or "?"
        now = _NOW.get(n.status, n.status)
        if n.status == "new":
            now = state.image
        elif n.status in ("old", "rolled_back"):
            now = f"{n.rollback_image if n.status == 'rolled_back' else before} ({_NOW[n.status]})"
        rollback = f"{n.rollback_image} ({n.rollback_from})"
        if n.rollback_proof:
            rollback += f"; verified: {n.rollback_proof}"
        if n.error:
            rollback += f"; error: {_cell(n.error)[:200]}"
        lines.append(f"| {n.name} | {n.wave} | {before} | {now} | {rollback} |")
    if state.rollback is not None:
        r = state.rollback
        result = {True: "done, verified", False: "FAILED", None: "in progress"}[r.ok]
        back = ", ".join(f"{n} -> {state.nodes[n].rollback_image}" for n in r.nodes) or "no node had the new image"
        lines += ["", f"**Rollback** ({result}): {back}"]
    lines += ["", f"State: `hilt rollout status {state.id}`"]
    return "\n".join(lines) + "\n"


def write_records(state: RolloutState, state_dir: Path) -> None:
    """reports/rollout.json and reports/rollout.md; failures are logged, never raised (the rollout's own
    state, in ``state_dir``, is what resume needs)."""
    try:
        reports = Path(state.reports_dir)
        reports.mkdir(parents=True, exist_ok=True)
        (reports / "rollout.json").write_text(state.model_dump_json(indent=2))
        (reports / "rollout.md").write_text(summary_markdown(state))
    except OSError as exc:
        log.error("rollout %s: records not written to %s: %s (the state is in %s)", state.id, state.reports_dir,
                  exc, state_dir)
