"""How a run ends, whichever way it ends: the lease released, the record written, the verdict honest.

A run can end normally, by Ctrl-C (SIGINT) or a CI job's timeout (SIGTERM) in any phase, with its lease lost, with
its reports directory full, with its history store down, or with a crash in hilt's own code (docs/ci.md, "How a
run ends"). Each ending reaches ``RunEnd.end`` exactly once, in the controlling process:

- normally, from hilt's ``pytest_sessionfinish`` (after pytest wrote junit.xml, before the terminal summary);
- from the outer ``pytest_sessionfinish`` wrapper, when another plugin's session finish raised first (pytest's
  JUnit writer on a full disk), so that hilt's never ran: the error becomes one line, not a traceback;
- from ``pytest_unconfigure``, when pytest never called the session finish (a signal in the session start,
  while the nodes booted).

SIGTERM is turned into the same KeyboardInterrupt as SIGINT (Python's default for SIGTERM is to die at once,
with no record and the lease left to expire), and the signal's name is kept for the record.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

from hilt.exitcodes import ExitCode
from hilt.pytestplugin.hooks import rig_wanted
from hilt.pytestplugin.state import RUN, SESSION, STARTED, STARTING, is_controller
from hilt.record.run_record import OutputProblem, RunRecord, internal_error_line
from hilt.util.atomic_file import is_disk_full

SIGNALS = (signal.SIGINT, signal.SIGTERM)
BOOT_JOIN_S = 30.0  # how long the end waits for a cancelled boot to stop touching the nodes


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hilt")
    group.addoption("--history-required", action="store_true",
                    help="a run whose history append failed exits 6 (a nightly job); by default it keeps its "
                         "verdict and says how to import summary.json later")


def pytest_configure(config: pytest.Config) -> None:
    run_end = RunEnd(config)
    config.pluginmanager.register(run_end, "hilt-run-end")
    config.pluginmanager.register(_Outer(run_end), "hilt-run-end-outer")


class RunEnd:
    """The end of one run, as a plugin object: its hooks see the run's config (pytest_internalerror has none)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.controller = is_controller(config)
        self.session: pytest.Session | None = None
        self.previous: dict[int, Any] = {}  # the signal handlers replaced, restored at unconfigure
        self.ended = False
        self.printed = False
        self.problems: list[OutputProblem] = []  # outputs lost before the end (a full disk met mid-run)

    # -------------------------------------------------------------- signals

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session):  # noqa: ANN201 - pluggy's wrapper protocol
        """Before the rig session starts: keep the session, and catch SIGTERM as well as SIGINT."""
        self.session = session
        config = self.config
        wanted = rig_wanted(config) if self.controller else bool(config.workerinput.get("hilt_state"))
        if wanted:
            self._catch_signals()
        return (yield)

    def _catch_signals(self) -> None:
        collector = self.config.stash.get(RUN, None)

        def interrupted(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal's handler signature
            name = signal.Signals(signum).name
            if collector is not None:
                if collector.signal is None:
                    collector.signal = name
                    if self.ended:
                        return  # the reports are being written: they finish (a second signal still stops them)
            raise KeyboardInterrupt(name)

        try:
            self.previous = {sig: signal.signal(sig, interrupted) for sig in SIGNALS}
        except ValueError:  # not the main thread (pytest.main inside a thread): Python's handlers stay
            self.previous = {}

    # -------------------------------------------------------------- the end

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """The normal end: after pytest's own writers (junit.xml), before the terminal summary."""
        if self.controller:
            self.end(session, int(exitstatus))

    def pytest_terminal_summary(self, terminalreporter) -> None:  # noqa: ANN001 - pytest's TerminalReporter
        self.print_summary(terminalreporter)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """A signal in the session start (while the nodes booted) skips pytest's session finish: end here."""
        try:
            if self.controller and self.session is not None and not self.ended \
                    and config.stash.get(SESSION, None) is not None:
                self.end(self.session, int(self.session.exitstatus))
                self.print_summary()
        finally:
            for sig, handler in self.previous.items():
                try:
                    signal.signal(sig, handler)
                except (ValueError, TypeError):
                    pass

    # -------------------------------------------------------------- a full disk while the run writes

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport):  # noqa: ANN201 - pluggy's wrapper protocol
        return (yield from self._disk_full_is_not_internal("a test report"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logfinish(self, nodeid: str, location: Any):  # noqa: ANN201
        return (yield from self._disk_full_is_not_internal(nodeid))

    def _disk_full_is_not_internal(self, what: str):  # noqa: ANN202 - a wrapper's generator
        """A report writer (allure-pytest's result files) that meets a full disk would be an INTERNALERROR that
        stops the run with a screen of traceback; it becomes a problem of the run (inconclusive) instead, and
        the tests go on (what they measure is still recorded by the controller)."""
        try:
            return (yield)
        except OSError as exc:
            full = is_disk_full(exc)
            if full is None:
                raise
            self.disk_full(full, what)
            return None

    def disk_full(self, exc: OSError, what: str) -> None:
        """Record a full disk once (a worker tells the controller through its workeroutput)."""
        path = str(exc.filename or self.config.getoption("hilt_reports"))
        if not self.controller:
            self.config.workeroutput.setdefault("hilt_disk_full", path)  # type: ignore[attr-defined]
            return
        if not any(p.disk_full for p in self.problems):
            self.problems.append(OutputProblem(output=what, path=path, error=exc.strerror or str(exc),
                                               disk_full=True))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist: a worker that met a full disk said so in its output."""
        path = getattr(node, "workeroutput", {}).get("hilt_disk_full")
        if path and not any(p.disk_full for p in self.problems):
            self.problems.append(OutputProblem(output="a worker's reports", path=path,
                                               error="No space left on device", disk_full=True))

    def pytest_internalerror(self, excrepr: Any, excinfo: pytest.ExceptionInfo[BaseException]) -> bool | None:
        """What still reaches pytest as an internal error: a full disk is recorded as such (and a worker lost to
        it is no second error); anything else is a crash, recorded for the run's end (exit 3)."""
        if not self.controller:
            return None
        collector = self.config.stash.get(RUN, None)
        full = is_disk_full(excinfo.value)
        text = str(excrepr)
        if full is not None or "[Errno 28]" in text:
            self.disk_full(full or OSError(28, "No space left on device"), "pytest")
        elif not any(p.disk_full for p in self.problems) and collector is not None \
                and collector.internal_error is None:
            collector.internal_error = internal_error_line(excinfo.value)
        return None

    # -------------------------------------------------------------- the end

    def end(self, session: pytest.Session, exitstatus: int, junit_error: BaseException | None = None) -> None:
        """Stop a boot in progress, complete the record, write every output and set the exit code, hand the
        verdict to Kubernetes where the rig opts in, and release the lease (whatever failed before). Once."""
        if self.ended:
            return
        self.ended = True
        config = self.config
        collector = config.stash.get(RUN, None)
        if collector is not None and collector.signal is None:
            collector.phase = "reports"  # a signal from now on is noted, and the end goes on (atomic files)
        rig_session = config.stash.get(SESSION, None)
        if rig_session is None:
            return
        try:
            rig_session.stop_boot()  # also ends a wait for busy nodes at once, out of the queue
            _join_boot(config)
            waiting = rig_session.waiting  # set while it waited for busy nodes, and left set when cut off there
            if collector is not None and waiting is not None:
                collector.waited_for_lease(waiting.want(), waiting.blockers())
            if collector is not None:
                self._record(session, collector, rig_session, exitstatus, junit_error)
                self._hand_off(collector)
        finally:
            self._release(session, collector, rig_session)

    def _release(self, session: pytest.Session, collector, rig_session) -> None:  # noqa: ANN001
        """Release the lease and stop the provider; what fails there is said, and recorded where it changes
        the verdict (the sim provider copies its log into the reports: a full disk)."""
        try:
            rig_session.finish()
        except Exception as exc:  # noqa: BLE001 - the lease was released first (LeaseHold.release never raises)
            record = collector.record if collector is not None else None
            full = is_disk_full(exc)
            if record is None or record.gate is None:
                raise
            if full is not None:
                where = getattr(full, "filename2", None) or full.filename
                record.output_problems.append(OutputProblem(output="rig session", path=str(where) if where else None,
                                                            error=full.strerror or str(full), disk_full=True))
            else:
                traceback.print_exception(exc, file=sys.stderr)
                collector.internal_error = record.internal_error = record.internal_error or internal_error_line(exc)
            from hilt.report.outputs import write_run_outputs

            write_run_outputs(record, _outputs(self.config, collector), _decider(self.config, collector))
            session.exitstatus = record.exit_code

    def _hand_off(self, collector) -> None:  # noqa: ANN001 - RunCollector
        """Rigs that opt in (``kubernetes:`` in rigs.yaml) get hilt's NFD feature file written or removed on each
        node after the verdict, while the nodes are still leased (hilt.k8s.publish, docs/kubernetes.md); never
        after a lost lease (the nodes may be someone else's) or a signal (the run must stop); a failure here
        never changes the verdict, and is said."""
        record, state = collector.record, collector.state
        if record is None or state is None or not getattr(state, "kubernetes", None):
            return
        if record.lease_lost or record.interrupted is not None:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")

        def say(line: str) -> None:
            if reporter is not None:
                reporter.write_line(f"hilt: {line}")

        try:
            from hilt.k8s.publish import hand_off
            from hilt.rig.config import KubernetesPublish
            from hilt.session.rig_session import node_configs

            hand_off(record, KubernetesPublish.model_validate(state.kubernetes), node_configs(state), say=say)
        except Exception as exc:  # noqa: BLE001 - the run's outcome is decided; say what went wrong, keep it
            say(f"error: hand-off to Kubernetes failed: {exc}")

    def _record(self, session: pytest.Session, collector, rig_session, exitstatus: int,  # noqa: ANN001
                junit_error: BaseException | None) -> None:
        from hilt.report.outputs import RunOutputs, write_run_outputs

        if not collector.started:
            state = _session_state(self.config, rig_session)
            if state is None or exitstatus == ExitCode.USAGE_ERROR:
                return  # nothing was reserved, or bad input: no run to record (pytest said why)
            collector.start(state)
        if collector.record is None:
            return
        collector.record.output_problems.extend(self.problems)
        decide = _decider(self.config, collector)
        writing = False
        try:
            collector.close(exitstatus)
            outputs = _outputs(self.config, collector)
            writing = True
            write_run_outputs(collector.record, outputs, decide, junit_error)
        except Exception as exc:  # noqa: BLE001 - a crash in hilt's own code: the traceback, one line, exit 3
            traceback.print_exception(exc, file=sys.stderr)
            collector.internal_error = collector.internal_error or internal_error_line(exc)
            collector.record.internal_error = collector.internal_error
            if writing:  # the writers ran (JUnit's properties may be in already): the summaries say the crash
                write_run_outputs(collector.record, RunOutputs(reports_dir=collector.reports_dir), decide)
            else:  # the record was being completed: every output, from the record as far as it got
                write_run_outputs(collector.record, _outputs_after_crash(self.config, collector), decide,
                                  junit_error)
        session.exitstatus = collector.record.exit_code

    def print_summary(self, terminalreporter=None) -> None:  # noqa: ANN001 - pytest's TerminalReporter
        """The verdict on the console, once: from the terminal summary, or where pytest printed none (after an
        internal error, or a signal in the session start)."""
        collector = self.config.stash.get(RUN, None)
        if self.printed or collector is None or collector.record is None or collector.record.gate is None:
            return
        self.printed = True
        reporter = terminalreporter or self.config.pluginmanager.get_plugin("terminalreporter")
        for line in summary_lines(collector.record, collector.reports_dir):
            if reporter is not None:
                reporter.write_line(line)
            else:
                print(line, file=sys.stderr)


class _Outer:
    """Around every other session finish (a second plugin object: one impl per hook and object)."""

    def __init__(self, run_end: RunEnd):
        self.run_end = run_end

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int):  # noqa: ANN201 - wrapper protocol
        """When another session finish raised before hilt's ran (pytest's JUnit writer on a full disk), the run
        still ends here (lease released, record written), the error is one line, and the exit code is the
        record's."""
        run_end = self.run_end
        if not run_end.controller:
            return (yield)
        try:
            return (yield)
        except Exception as exc:  # noqa: BLE001 - whatever another writer raised, the run must still end
            collector = run_end.config.stash.get(RUN, None)
            if is_disk_full(exc) is None:
                traceback.print_exception(exc, file=sys.stderr)
                if collector is not None and collector.internal_error is None:
                    collector.internal_error = internal_error_line(exc)
            run_end.end(session, int(exitstatus), junit_error=exc)
            return None
        finally:
            run_end.print_summary()  # pytest prints no terminal summary after an internal error


def _decider(config: pytest.Config, collector):  # noqa: ANN001, ANN202 - RunCollector -> a callable
    """The run's verdict and exit code from its record as it stands (decided again when an output failed)."""
    from hilt.gate.verdict import run_verdict

    def decide() -> None:
        record = collector.record
        record.gate, record.exit_code = run_verdict(
            record, collector.pytest_status, session_error=collector.state.error if collector.state else None,
            allow_ungated=bool(config.getoption("allow_ungated", False)),
            history_required=bool(config.getoption("history_required", False)))

    return decide


def summary_lines(record: RunRecord, reports_dir: Path) -> list[str]:
    """The console's summary (the same as summary.md's), verdict first, then the outputs that failed."""
    from rich.console import Console

    from hilt.report.outputs import problem_lines
    from hilt.report.summary import print_summary

    assert record.gate is not None
    lines = []
    try:
        text = io.StringIO()
        print_summary(record, Console(file=text, force_terminal=False, width=120))
        lines += text.getvalue().splitlines()
    except Exception as exc:  # noqa: BLE001 - the verdict line below still says it all
        lines.append(f"hilt gate: {record.gate.outcome}: {record.gate.reason} ({exc})")
    lines += [f"error: {line}" for line in problem_lines(record.output_problems)]
    gate = record.gate
    # "gate: not run (...)" says what it is; a verdict is named first ("gate INCONCLUSIVE: ...")
    verdict = gate.reason if gate.outcome == "not_run" else f"gate {gate.outcome.upper()}: {gate.reason}"
    lines.append(f"hilt: {verdict} (exit {record.exit_code}; reports in {reports_dir}/)")
    return lines


def _join_boot(config: pytest.Config) -> None:
    """Under xdist the boot runs in a thread: the session's finish cancelled it; wait for it to stop."""
    starting = config.stash.get(STARTING, None)
    if starting is not None:
        starting.join(BOOT_JOIN_S)
        if starting.is_alive():  # said, so that a slow end names its cause
            print(f"hilt: warning: the rig session's start did not end within {BOOT_JOIN_S:.0f} s of the run's end",
                  file=sys.stderr)


def _session_state(config: pytest.Config, rig_session):  # noqa: ANN001, ANN202 - RigSession -> SessionState
    """The session's state as far as it got: the boot's outcome, or what the session wrote before a signal."""
    from hilt.session.rig_session import SessionState

    outcome = config.stash.get(STARTED, None)
    if isinstance(outcome, SessionState):
        return outcome
    if rig_session.state is not None:
        return rig_session.state
    if rig_session.state_path.exists():
        return SessionState.load(rig_session.state_path)
    return None


def _outputs(config: pytest.Config, collector):  # noqa: ANN001, ANN202 - RunCollector -> RunOutputs
    from hilt.report.outputs import RunOutputs

    xml = getattr(config.option, "xmlpath", None)
    allure = getattr(config.option, "allure_report_dir", None)
    history, password = (None, None) if os.environ.get("HILT_NO_HISTORY") else _history(config, collector.state)
    return RunOutputs(reports_dir=collector.reports_dir, junit_path=Path(xml) if xml else None,
                      allure_dir=Path(allure) if allure else None, history=history, history_password=password,
                      rigs_file=Path(config.getoption("rigs_file")))


def _outputs_after_crash(config: pytest.Config, collector):  # noqa: ANN001, ANN202 - RunCollector -> RunOutputs
    """Every output after a crash while the record was completed (the history too: the nightly trend and
    `hilt history` see the run, inconclusive with its ``internal_error``); the reports directory alone when
    finding the others crashed as well."""
    from hilt.report.outputs import RunOutputs

    try:
        return _outputs(config, collector)
    except Exception as exc:  # noqa: BLE001 - a second crash: its traceback, and the summaries still written
        traceback.print_exception(exc, file=sys.stderr)
        return RunOutputs(reports_dir=collector.reports_dir)


def _history(config: pytest.Config, state) -> tuple[str | Path, Any]:  # noqa: ANN001 - SessionState
    """rigs.yaml's history (a path or a postgresql:// URL) and its password reference (None: libpq's own)."""
    from hilt.rig.config import Secret, load_inventory

    if state is not None and state.history:  # rigs.yaml as the session read it, not a second reading
        ref = getattr(state, "history_password", None)
        return state.history, Secret(ref) if ref else None
    try:
        inventory = load_inventory(config.getoption("rigs_file"))
        return inventory.history, inventory.history_password
    except Exception:  # noqa: BLE001 - the run's reports dir is the fallback
        return Path(config.getoption("hilt_reports")) / "history.sqlite", None
