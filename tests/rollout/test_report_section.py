"""The HTML report's Rollouts section, from the wave runs' tags in the history."""

from __future__ import annotations

from hilt.record.run_record import RunRecord, VerdictRecord
from hilt.report.html import build_report


def _run(run_id: str, at: str, rollout: dict | None) -> RunRecord:
    return RunRecord(run_id=run_id, started_at=at, rig="sim", image="regressed", rollout=rollout,
                     gate=VerdictRecord(outcome="regression", reason="x"))


def test_each_rollout_shows_its_waves_verdicts_and_runs(tmp_path):
    runs = [
        _run("r1", "2026-03-01T02:00:00Z", {"id": "ro-1", "wave": 1, "nodes": ["node1"],
                                            "control": ["node2", "node3"], "outcome": "regression",
                                            "reason": "nccl.all_reduce.busbw on node1 <-39%>"}),
        _run("r0", "2026-03-01T01:00:00Z", None),
    ]
    html = build_report(runs, tmp_path / "report.html").read_text()
    section = html[html.index('<section id="rollouts">'):]
    section = section[:section.index("</section>")]
    assert "ro-1" in section and "regressed on sim" in section
    assert "<td>canary</td><td>node1</td><td>node2, node3</td><td>regression</td>" in section
    assert "&lt;-39%&gt;" in section  # data is escaped
    assert 'href="#' in section and ">r1</a>" in section and "r0" not in section


def test_no_rollout_no_section(tmp_path):
    html = build_report([_run("r0", "2026-03-01T01:00:00Z", None)], tmp_path / "report.html").read_text()
    assert 'id="rollouts"' not in html
