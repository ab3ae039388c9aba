"""summary.json / summary.md / the console table: verdict first, one row per metric, problems listed."""

import io

from rich.console import Console

from hilt.record.run_record import (
    BaselineRecord,
    MetricRecord,
    NodeRecord,
    RunRecord,
    VerdictRecord,
)
from hilt.record.run_record import TestRecord as RecordedTest  # not a test class
from hilt.report.summary import print_summary, render_markdown, write_summary


def record(gate="regression") -> RunRecord:
    return RunRecord(
        run_id="run-7", started_at="2025-03-04T05:06:07Z", rig="sim", image="img-regressed", profile="sim-4gpu",
        nodes=[NodeRecord(name="sim-node-1"), NodeRecord(name="sim-node-2", booted=False, error="boot timed out")],
        tests=[RecordedTest(nodeid="suites/test_nccl.py::test_busbw[64M]", outcome="failed", kind="regression",
                          message="busbw 0.21 vs 0.3"),
               RecordedTest(nodeid="suites/test_boot.py::test_boot[sim-node-2]", outcome="error",
                          kind="infrastructure", message="NodeError: boot timed out")],
        metrics=[MetricRecord(name="torch.all_reduce.busbw", unit="GB/s",
                              labels={"size": "67108864", "nodes": "2"}, samples=[0.21, 0.22, 0.2],
                              baseline=BaselineRecord(value=0.3, tolerance=0.05),
                              verdict=VerdictRecord(outcome="regression", reason="busbw{size=67108864}: regression")),
                 MetricRecord(name="torch.all_reduce.busbw", unit="GB/s", labels={"size": "16777216"},
                              samples=[0.3, 0.31], baseline=BaselineRecord(value=0.3, tolerance=0.05),
                              verdict=VerdictRecord(outcome="pass", reason="ok"))],
        gate=VerdictRecord(outcome=gate, reason="1 regressed metric"), exit_code=1)


def test_write_summary_writes_json_and_markdown_with_the_verdict_first(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    json_path, md_path = write_summary(record(), tmp_path / "reports")
    assert RunRecord.model_validate_json(json_path.read_text()) == record()
    md = md_path.read_text()
    first = md.splitlines()[0]
    assert "FAIL" in first and "regression" in first
    assert "| `torch.all_reduce.busbw` | nodes=2, size=67108864 | 0.21 GB/s (n=3) | 0.3 GB/s ±5% | -30.0% |" in md
    assert md.index("size=67108864") < md.index("size=16777216")  # regressions first
    assert "suites/test_nccl.py::test_busbw[64M]" in md
    assert "Infrastructure errors (2)" in md and "boot timed out" in md


def test_markdown_is_appended_to_the_github_step_summary(tmp_path, monkeypatch):
    step = tmp_path / "step.md"
    step.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    write_summary(record(), tmp_path / "r")
    text = step.read_text()
    assert text.startswith("# earlier step\n") and "hilt gate: **FAIL**" in text


def test_a_pass_reads_as_pass_and_no_gate_is_said():
    assert "**PASS**" in render_markdown(record(gate="pass")).splitlines()[0]
    bare = RunRecord(run_id="r", started_at="2025-01-01T00:00:00Z", rig="sim")
    assert "no gate verdict recorded" in render_markdown(bare)


def test_print_summary_shows_verdict_and_metrics():
    out = io.StringIO()
    print_summary(record(), Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert text.splitlines()[0].startswith("hilt gate: FAIL (regression)")
    assert "torch.all_reduce.busbw" in text and "-30.0%" in text and "boot timed out" in text


def test_ungated_metrics_are_folded_below_the_gated_ones():
    from hilt.record.run_record import MetricRecord, RunRecord, VerdictRecord
    from hilt.report.summary import render_markdown

    record = RunRecord(run_id="r1", started_at="2026-11-28T00:00:00+00:00", rig="sim", metrics=[
        MetricRecord(name="ddp.samples_per_s", unit="1/s", samples=[38.0]),
        MetricRecord(name="torch.all_reduce.busbw", unit="GB/s", samples=[0.031],
                     verdict=VerdictRecord(outcome="pass", reason="within tolerance", gated=True)),
    ])
    text = render_markdown(record)
    folded = text.index("<details>")
    assert text.index("torch.all_reduce.busbw") < folded < text.index("ddp.samples_per_s")
    assert "1 more metric(s), measured but not gated" in text


def test_firmware_each_node_ran_is_kept_and_shown_folded():
    """test_firmware_matrix's versions reach the run record and summary.md; a GPU that differs is shown by index."""
    import json

    from hilt.record.run_record import FIRMWARE_PROPERTY, firmware_from_report

    found = {"bios": ["2.2.1"], "bmc": ["1.00"], "vbios": ["96.00.99.00.01", "96.00.74.00.1C"]}
    assert firmware_from_report({FIRMWARE_PROPERTY: json.dumps(found)}) == found
    assert firmware_from_report({FIRMWARE_PROPERTY: "{not json"}) is None
    assert firmware_from_report({FIRMWARE_PROPERTY: '{"vbios": "96.00.99.00.01"}'}) is None  # not a list
    assert firmware_from_report({}) is None
    run = record(gate="pass")
    run.nodes[0].firmware = found
    md = render_markdown(run)
    assert "<details><summary>firmware of 1 node(s)</summary>" in md
    assert "| `sim-node-1` | `2.2.1` | `1.00` | [0] `96.00.99.00.01`, [1] `96.00.74.00.1C` |" in md
    assert RunRecord.model_validate_json(run.model_dump_json()).nodes[0].firmware == found
    assert "firmware of" not in render_markdown(record(gate="pass"))
