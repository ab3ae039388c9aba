"""A run's outputs at its end (hilt.report.outputs): each whole or absent, every failure said, the verdict honest.

The full disk is a real one: a tmpfs mounted for the test (root, as the e2e tests are) and unmounted after.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hilt.exitcodes import ExitCode
from hilt.gate.verdict import run_verdict
from hilt.history.base import HistoryError
from hilt.record import run_record as rr
from hilt.record.run_record import (
    CoverageEntry,
    CoverageRecord,
    InterruptRecord,
    MetricRecord,
    OutputProblem,
    RunRecord,
    VerdictRecord,
)
from hilt.report import outputs as outputs_module
from hilt.report.outputs import RunOutputs, is_bug, problem_lines, write_run_outputs
from hilt.report.summary import render_markdown
from hilt.util.atomic_file import OutputError, write_atomic
from tests.support.tmpfs import mounted_tmpfs

NEEDS_ROOT = pytest.mark.needs_root("the full disk is a tmpfs mounted for the test")


@pytest.fixture
def tiny_disk(tmp_path: Path):
    with mounted_tmpfs(tmp_path / "disk", size="256k", nr_inodes=1000) as mount:
        yield mount


def _fill(mount: Path) -> None:
    with open(mount / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass  # full: nothing is left in a buffer to fail again at close


def passing_run() -> RunRecord:
    """A gate run whose one gated entry was measured within tolerance: it passes unless something else says."""
    entry = CoverageEntry(profile="p", metric="torch.all_reduce.busbw", labels={"size": "16"}, node="n1",
                          measured=True, outcome="pass")
    return RunRecord(
        run_id="20261204T000000-abcdef", started_at="2026-12-04T00:00:00Z", rig="sim", image="good",
        tests=[rr.TestRecord(nodeid="suites/test_nccl.py::test_torch_allreduce[n1]", outcome="passed", node="n1")],
        metrics=[MetricRecord(name="torch.all_reduce.busbw", unit="GB/s", labels={"size": "16"}, samples=[1.0, 1.0],
                              node="n1", verdict=VerdictRecord(outcome="pass", reason="within tolerance"))],
        coverage=CoverageRecord(entries=[entry]))


def decider(record: RunRecord, **options):  # noqa: ANN201
    def decide() -> None:
        record.gate, record.exit_code = run_verdict(record, 0, **options)
    return decide


# ------------------------------------------------------------------ atomic files


@NEEDS_ROOT
def test_a_file_that_does_not_fit_is_absent_named_and_leaves_no_temporary(tiny_disk: Path):
    old = write_atomic(tiny_disk / "summary.json", '{"gate": "pass from the last run"}')
    _fill(tiny_disk)
    with pytest.raises(OutputError) as caught:
        write_atomic(tiny_disk / "summary.json", "x" * 200_000)
    assert caught.value.disk_full and str(old) in str(caught.value) and "ENOSPC" in str(caught.value)
    assert not old.exists(), "the last run's summary would pass for this one's"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]


def test_a_file_that_fits_replaces_the_old_one_whole(tmp_path: Path):
    path = write_atomic(tmp_path / "metrics.prom", "old\n")
    write_atomic(path, "new\n")
    assert path.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["metrics.prom"]


# ------------------------------------------------------------------ the run's outputs


def test_a_history_that_fails_keeps_the_verdict_and_every_summary_names_the_command(tmp_path: Path):
    record = passing_run()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    reports = tmp_path / "reports"
    problems = write_run_outputs(record, RunOutputs(reports_dir=reports, history=blocker / "history.sqlite",
                                                    rigs_file=tmp_path / "rigs.yaml"), decider(record))
    [problem] = problems
    assert problem.output == "history" and not problem.disk_full
    assert problem.recover == (f"HILT_RIGS={tmp_path / 'rigs.yaml'} hilt history import {reports / 'summary.json'}")
    assert (record.gate.outcome, record.exit_code) == ("pass", ExitCode.PASS)  # a CI gate does not fail for it
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["output_problems"][0]["recover"] == problem.recover  # written again after the append failed
    assert f"`{problem.recover}`" in (reports / "summary.md").read_text()
    assert problem_lines(problems) == [problem.line()] and "history not appended" in problem.line()


def test_a_nightly_job_that_requires_the_history_gets_exit_6(tmp_path: Path):
    record = passing_run()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    write_run_outputs(record, RunOutputs(reports_dir=tmp_path / "reports", history=blocker / "h.sqlite"),
                      decider(record, history_required=True))
    assert (record.gate.outcome, record.exit_code) == ("inconclusive", ExitCode.INCONCLUSIVE)
    assert "history required" in record.gate.reason


@NEEDS_ROOT
def test_a_full_disk_makes_the_run_inconclusive_and_no_output_says_pass(tiny_disk: Path):
    record = passing_run()
    reports = tiny_disk / "reports"
    write_atomic(reports / "summary.md", "## hilt gate: **PASS** (the last run's)\n")
    _fill(tiny_disk)
    problems = write_run_outputs(record, RunOutputs(reports_dir=reports, allure_dir=reports / "allure-results"),
                                 decider(record))
    assert (record.gate.outcome, record.exit_code) == ("inconclusive", ExitCode.INCONCLUSIVE)
    assert any(p.disk_full for p in problems)
    for name in ("summary.md", "summary.json", "metrics.prom"):
        path = reports / name
        assert not path.exists() or "PASS" not in path.read_text().replace("INCONCLUSIVE", ""), name
    [line] = problem_lines(problems)
    assert "No space left on device" in line and str(reports) in line and "INCONCLUSIVE" in line


def test_a_bug_in_a_report_writer_is_a_crash_exit_3_with_its_traceback_not_a_pass(tmp_path: Path, monkeypatch,
                                                                                 capsys):
    """A crash in hilt's own summary.md writer (docs/ci.md, "a crash in hilt's own code"). Before: one line
    "summary.md not written: ...: KeyError: ...", no traceback anywhere, and the run's verdict, PASS, exit 0."""
    def broken(record, reports):  # noqa: ANN001, ANN202 - the writer's signature
        raise KeyError("labels")

    monkeypatch.setattr(outputs_module, "write_summary_md", broken)
    record = passing_run()
    reports = tmp_path / "reports"
    problems = write_run_outputs(record, RunOutputs(reports_dir=reports, history=tmp_path / "history.sqlite"),
                                 decider(record))
    assert (record.gate.outcome, record.exit_code) == ("inconclusive", ExitCode.INTERNAL_ERROR)
    assert record.internal_error == "KeyError: 'labels'" and "hilt internal error: KeyError" in record.gate.reason
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in broken" in err and "KeyError: 'labels'" in err
    [problem] = problems
    assert problem.output == "summary.md" and not (reports / "summary.md").exists()
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["internal_error"] == "KeyError: 'labels'" and summary["exit_code"] == ExitCode.INTERNAL_ERROR
    assert summary["gate"]["outcome"] == "inconclusive"
    assert 'hilt_gate_verdict{outcome="inconclusive",rig="sim"} 1.0' in (reports / "metrics.prom").read_text()


def test_an_os_error_or_a_store_error_is_no_crash():
    """What the disk or the history store does is an output problem, never exit 3 (is_bug)."""
    assert not is_bug(OSError(13, "Permission denied")) and not is_bug(OutputError("/r/x", OSError(28, "full")))
    assert not is_bug(HistoryError("postgresql://db/h: cannot connect")) and is_bug(KeyError("x"))
    assert not is_bug(ExceptionGroup("writers", [OSError(28, "No space left on device")]))


# ------------------------------------------------------------------ the verdict of a run cut short


def test_an_interrupted_run_is_inconclusive_and_says_what_did_not_run():
    record = passing_run()
    record.interrupted = InterruptRecord(signal="SIGINT", phase="tests",
                                         running=["suites/test_ddp.py::test_ddp[n1]"],
                                         not_run=["suites/test_nvbandwidth.py::test_nvbandwidth[n1]"])
    verdict, code = run_verdict(record, pytest_status=ExitCode.INTERRUPTED)
    assert (verdict.outcome, code) == ("inconclusive", ExitCode.INCONCLUSIVE)
    assert verdict.reason.startswith("interrupted by SIGINT")
    assert "test_ddp[n1]" in verdict.reason and "1 test did not run: test_nvbandwidth[n1]" in verdict.reason


def test_a_run_stopped_while_waiting_for_its_nodes_says_so_and_that_nothing_ran():
    record = RunRecord(run_id="20261204T000000-abcdef", started_at="2026-12-04T00:00:00Z", rig="sim", image="good",
                       nodes=[rr.NodeRecord(name="node1", booted=False,
                                            error="not leased: SIGTERM stopped the run while it waited for the node")])
    record.interrupted = InterruptRecord(signal="SIGTERM", phase="lease", waiting_for="sim/node1",
                                         blocked_by="sim/node1 held by alice@ci-3 pid 4242 (lease 1f2e)")
    verdict, code = run_verdict(record, pytest_status=ExitCode.INTERRUPTED,
                                session_error="LeaseWaitCancelled: stopped waiting for sim/node1")
    assert (verdict.outcome, code) == ("inconclusive", ExitCode.INCONCLUSIVE)
    assert verdict.reason == ("interrupted by SIGTERM while waiting for its nodes sim/node1: sim/node1 held by "
                              "alice@ci-3 pid 4242 (lease 1f2e); nothing ran: no node was leased or booted, "
                              "no test ran")
    record.gate = verdict
    markdown = render_markdown(record)
    assert ("- **interrupted** by SIGTERM while waiting for its nodes; nothing ran: no node was leased or booted, no "
            "test ran\n  - waiting for: sim/node1: sim/node1 held by alice@ci-3 pid 4242 (lease 1f2e)") in markdown
    assert "node `node1`: not leased" not in markdown  # a wait cut off is no infrastructure error of the node


def test_a_regression_seen_before_the_interruption_is_still_named():
    record = passing_run()
    record.metrics[0].verdict = VerdictRecord(outcome="regression", reason="busbw 50% below", failed=True)
    record.interrupted = InterruptRecord(signal="SIGTERM", phase="tests")
    verdict, code = run_verdict(record, pytest_status=ExitCode.INTERRUPTED)
    assert (verdict.outcome, code) == ("inconclusive", ExitCode.INCONCLUSIVE)
    assert "before that:" in verdict.reason and "busbw 50% below" in verdict.reason


def test_a_lost_lease_is_inconclusive_whatever_the_tests_said():
    record = passing_run()
    record.lease_lost = "lease lost: lease 1f2e was not renewed for 3 s"
    verdict, code = run_verdict(record)
    assert (verdict.outcome, code) == ("inconclusive", ExitCode.INCONCLUSIVE) and "lease 1f2e" in verdict.reason


def test_a_crash_in_hilt_keeps_exit_3_and_is_never_a_pass():
    record = passing_run()
    record.internal_error = "KeyError: 'gate'"
    verdict, code = run_verdict(record, pytest_status=ExitCode.INTERNAL_ERROR)
    assert (verdict.outcome, code) == ("inconclusive", ExitCode.INTERNAL_ERROR)


def test_a_full_disk_wins_over_the_internal_error_it_caused():
    record = passing_run()
    record.internal_error = "OSError: [Errno 28] No space left on device"
    record.output_problems.append(OutputProblem(output="junit.xml", path="/r/junit.xml",
                                                error="No space left on device", disk_full=True))
    verdict, code = run_verdict(record, pytest_status=ExitCode.INTERNAL_ERROR)
    assert (verdict.outcome, code) == ("inconclusive", ExitCode.INCONCLUSIVE)
    assert "/r/junit.xml: No space left on device: the disk is full" in verdict.reason
