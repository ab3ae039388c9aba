"""The report's "Rollouts" section: each rollout in the window, wave by wave, from the tags its wave runs carry in
the history (RunRecord.rollout: id, wave, new nodes, control group, the wave's verdict). Empty when no run of the
window belongs to a rollout, so the nightly report of a rig without rollouts does not change."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from hilt.record.run_record import RunRecord
from hilt.report.changes import run_anchor


def rollouts_section(runs: Sequence[RunRecord]) -> str:
    """``<section id="rollouts">`` with one table per rollout, newest first; '' when there is none."""
    by_id: dict[str, list[RunRecord]] = {}
    for run in runs:
        tag = run.rollout or {}
        if tag.get("id"):
            by_id.setdefault(str(tag["id"]), []).append(run)
    if not by_id:
        return ""
    out = ['<section id="rollouts"><h2>Rollouts</h2>']
    for rollout_id, waves in sorted(by_id.items(), key=lambda kv: max(r.started_at for r in kv[1]), reverse=True):
        waves.sort(key=lambda r: (int((r.rollout or {}).get("wave", 0)), r.started_at))
        first = waves[0]
        out.append(f'<h3>{escape(rollout_id)} <span class="muted">{escape(first.image or "?")} on '
                   f'{escape(first.rig)}</span></h3>')
        out.append('<table class="rollout"><tr><th>wave</th><th>new nodes</th><th>control</th><th>verdict</th>'
                   '<th>why</th><th>run</th></tr>')
        for run in waves:
            tag = run.rollout or {}
            wave = int(tag.get("wave", 0))
            name = "canary" if wave == 1 else f"wave {wave}"
            if int(tag.get("look", 1)) > 1:
                name += f" (look {int(tag['look'])})"
            outcome = str(tag.get("outcome") or (run.gate.outcome if run.gate else "?"))
            out.append(
                f"<tr><td>{escape(name)}</td><td>{escape(', '.join(tag.get('nodes') or []))}</td>"
                f"<td>{escape(', '.join(tag.get('control') or []) or '-')}</td><td>{escape(outcome)}</td>"
                f"<td>{escape(str(tag.get('reason') or '')[:400])}</td>"
                f'<td><a href="#{run_anchor(run.run_id)}">{escape(run.run_id)}</a></td></tr>')
        out.append("</table>")
    out.append("</section>")
    return "".join(out)
