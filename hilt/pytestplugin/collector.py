"""The run collector: a plugin object that collects a run as it happens into a RunRecord; it writes nothing.

Created and registered by hilt's ``pytest_configure`` in the controlling process (the only process, or the
xdist controller, which receives every worker's reports), kept in ``config.stash``. Besides each test's report
it keeps what a record of an interrupted run needs: the tests selected, those running now, and how far the rig
session got. The outputs are written by hilt.report.outputs, at the end (hilt/pytestplugin/ending.py).
"""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path

import pytest

from hilt.pytestplugin.fusion import apply_to_nodes
from hilt.pytestplugin.state import (
    METRIC_PROPERTY,
    NODE_PROPERTY,
    PROBE_PROPERTY,
    TEST_PROPERTY,
    probe_metrics,
)
from hilt.pytestplugin.topology import topology_from_report
from hilt.record.run_record import (
    BaselineRecord,
    CoverageRecord,
    InterruptRecord,
    MetricRecord,
    NodeRecord,
    RunRecord,
    TestRecord,
    TopologyRecord,
    VerdictRecord,
    firmware_from_report,
)
from hilt.report.junit import junit_properties
from hilt.report.links import run_artifacts
from hilt.util.ci_env import ci_job_url

log = logging.getLogger(__name__)


def _message(report: pytest.TestReport) -> str | None:
    """The reason a person reads: a skip's longrepr is a (path, line, reason) tuple, not a crash to show whole."""
    longrepr = report.longrepr
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(longrepr)[-500:]


class RunCollector:
    """Records test reports and metrics into a RunRecord, and how the run ended; judging and writing are not its."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.state = None
        self.record: RunRecord | None = None
        self.started = False
        self.probe_selected = False  # a test feeding the gate was selected (or reported): the run is a gate
        self.plans: dict[str | None, list] = {}  # node (None: the lease) -> what its probe plan measures
        self.selected: list[str] = []  # the test ids this run was to run (after deselection), in order
        self.running: dict[str, None] = {}  # tests started and not finished (an ordered set)
        self.done: set[str] = set()  # tests that finished (pytest_runtest_logfinish)
        self.signal: str | None = None  # SIGINT/SIGTERM that stopped the run (hilt/pytestplugin/ending.py)
        self.phase = "boot"  # boot -> tests -> reports: where a signal finds the run ("lease": see waited_for_lease)
        self.waiting: tuple[str, str] | None = None  # phase lease: (the nodes wanted, who held them)
        self.boot_steps: dict[str, str] = {}  # node -> its last boot step (the rig session's progress)
        self.internal_error: str | None = None  # a crash in hilt's or pytest's code during the run
        self.pytest_status = 0

    @property
    def reports_dir(self) -> Path:
        return Path(self.config.getoption("hilt_reports"))

    def start(self, state) -> None:  # noqa: ANN001 - hilt.session.rig_session.SessionState
        self.state = state
        self.started = True
        if self.signal is None:
            self.phase = "tests"  # the boot is over; a session cut off in its boot is recorded at the end, as such
        nodes = []
        cut_off = self.signal is not None and not state.nodes  # stopped before the boot gave its results
        stopped = (f"not leased: {self.signal} stopped the run while it waited for the node" if self.phase == "lease"
                   else f"boot cut off by {self.signal}")
        for name in state.node_names or (sorted(state.configs) if cut_off else []):
            result = state.result(name)
            if result is None:
                why = state.excluded.get(name) or (stopped if cut_off else None)
                nodes.append(NodeRecord(name=name, booted=False, error=why))
                continue
            nodes.append(NodeRecord(
                name=name, image_id=result.image_id, kernel=result.kernel, driver=result.driver,
                bios_version=result.bios_version, bmc_firmware=result.bmc_firmware, boot_s=result.boot_s,
                booted=result.ok, error=result.error, health=result.evidence.get("health"),
                identity=result.identity,
            ))
        node_profiles: dict[str, str] = {}
        try:
            from hilt.session.rig_session import node_configs

            if state.rigs_file:
                node_profiles = {name: cfg.profile for name, cfg in node_configs(state).items()}
        except Exception:  # noqa: BLE001 - provenance only; the fixtures report a broken session
            node_profiles = {}
        shared = set(node_profiles.values())
        image = state.image or {}
        self.record = RunRecord(
            run_id=state.run_id, started_at=state.started_at, rig=state.rig, image=state.image_name,
            image_url=image.get("url"), profile=next(iter(shared)) if len(shared) == 1 else None, nodes=nodes,
            node_profiles=node_profiles, versions={"hilt": _hilt_version(), "python": platform.python_version()},
            ci_url=ci_job_url(), **run_artifacts(getattr(self.config.option, "xmlpath", None),
                                                 getattr(self.config.option, "allure_report_dir", None)),
        )
        self.record.coverage = self._expected(node_profiles)

    def _expected(self, node_profiles: dict[str, str]):  # noqa: ANN202 - CoverageRecord
        """The gated entries this run owes a verdict on, and what each node's probe plan measures (for why)."""
        from hilt.gate.baselines import load_run_baselines
        from hilt.gate.coverage import expected_entries
        from hilt.record.run_record import CoverageRecord

        try:
            directory = self.config.getoption("baselines_dir")
            if directory is None and self.state is not None:
                directory = self.state.baselines_dir  # from the session hand-off: rigs.yaml is read once
            book = load_run_baselines(Path(directory or "baselines"), node_profiles)
            self.plans = _plans(self.config, node_profiles)
        except Exception as exc:  # noqa: BLE001 - the gate fixtures raise the same problem, in a test
            log.error("hilt: the gated entries of this run cannot be known: %s", exc)
            return CoverageRecord()
        return expected_entries(node_profiles, book.sets,
                                self.state.lease_wide_ungated if self.state is not None else None)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """A run that selects a probe (a test using the release gate, or marked `probe`) is a gate; and what
        this run was to run (the controller without xdist collects; under xdist the workers do).

        Asked once collection is final: ``pytest_collection_modifyitems`` saw the items before pytest's own
        ``-k``/``-m`` deselection (and the rig's suites), so ``-k trust`` counted the deselected probes."""
        self.probe_selected = self.probe_selected or any(probe_metrics(item) is not None for item in session.items)
        if not self.selected:
            self.selected = [item.nodeid for item in session.items]

    def junit_properties(self) -> list[tuple[str, str]]:
        """The run's provenance for JUnit's ``<testsuite>`` (hilt.report.junit)."""
        return junit_properties(self.record) if self.record is not None else []


    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:  # noqa: ANN001 - xdist's
        if not self.selected:
            self.selected = list(ids)

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:  # noqa: ANN001 - pytest's location
        self.phase = "tests"
        self.running[nodeid] = None

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:  # noqa: ANN001
        self.running.pop(nodeid, None)
        self.done.add(nodeid)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """A stop that hilt's signal handler did not see (Python's own SIGINT handler, an xdist worker that was
        interrupted) is an interruption too; pytest's own stops (collection errors, --maxfail) are not."""
        if self.signal is not None:
            return
        if type(excinfo.value) is KeyboardInterrupt:
            self.signal = "SIGINT"
        elif "keyboard-interrupt" in str(excinfo.value):  # xdist: "[gw0] node received keyboard-interrupt"
            self.signal = "SIGINT (in a worker)"

    def waited_for_lease(self, wanted: str, blocked_by: str) -> None:
        """A signal found the run waiting for its nodes (--lease-wait), before any was leased: phase ``lease``."""
        if self.signal is not None and self.phase == "boot":
            self.phase = "lease"
            self.waiting = (wanted, blocked_by)

    def boot_progress(self, node: str, what: str) -> None:
        """The rig session's progress callback: the last step of each node, for a run cut off in its boot."""
        self.boot_steps[node] = what.split(":", 1)[0]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """First: another plugin's report writer that fails (a full disk) must not cost the run its record."""
        self.add_report(report)

    def add_report(self, report: pytest.TestReport) -> None:
        if self.record is None:
            return
        props = dict(p for p in report.user_properties if isinstance(p, tuple) and len(p) == 2)
        if PROBE_PROPERTY in props:
            self.probe_selected = True  # under xdist the controller collects nothing: the reports say it
        if report.when == "call":  # setup/call/teardown reports all carry the item's properties
            for name, value in report.user_properties:
                if name == METRIC_PROPERTY:
                    self._add_metric(report.nodeid, json.loads(value))
            self._add_topology(props.get(NODE_PROPERTY), topology_from_report(props))
            self._add_firmware(props.get(NODE_PROPERTY), firmware_from_report(props))
            apply_to_nodes(props, props.get(NODE_PROPERTY), self.record.nodes)  # C2C, domain, IMEX (fabric picture)
        outcome = None
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = "passed" if report.passed else ("skipped" if report.skipped else
                                                      ("error" if report.when == "setup" else "failed"))
        elif report.when == "teardown" and report.failed:
            outcome = "error"
        if outcome is None:
            return
        kind = props.get("hilt.kind", "none") if outcome in ("failed", "error") else "none"
        if outcome == "error" and kind == "none":
            kind = "infrastructure"
        message = _message(report) if outcome in ("failed", "error", "skipped") else None
        self.record.tests.append(TestRecord(nodeid=report.nodeid, outcome=outcome, kind=kind, message=message,
                                            duration_s=round(report.duration, 3), node=props.get(NODE_PROPERTY),
                                            test_id=props.get(TEST_PROPERTY),
                                            probe=_declared(props.get(PROBE_PROPERTY))))

    def _add_topology(self, node: str | None, topology: TopologyRecord | None) -> None:
        """test_topology's found and expected matrix, onto its node's record (the report's fabric picture)."""
        if self.record is None or topology is None:
            return
        for record in self.record.nodes:
            if record.name == node:
                record.topology = topology

    def _add_firmware(self, node: str | None, firmware: dict[str, list[str | None]] | None) -> None:
        """test_firmware_matrix's versions, onto its node's record (summary.json, summary.md)."""
        if self.record is None or firmware is None:
            return
        for record in self.record.nodes:
            if record.name == node:
                record.firmware = firmware

    def _add_metric(self, nodeid: str, data: dict) -> None:
        assert self.record is not None
        verdict = data.get("verdict")
        baseline = data.get("baseline")
        lost = self.lease_lost()
        if lost and verdict:
            # reported after the lease was lost: the nodes may have been someone else's while it was measured
            verdict = {**verdict, "outcome": "inconclusive", "failed": False,
                       "reason": f"not judged: reported after the lease was lost ({lost})"}
        self.record.metrics.append(MetricRecord(
            name=data["name"], unit=data["unit"], labels=data.get("labels") or {}, samples=data["samples"],
            higher_is_better=data.get("higher_is_better", True), test=nodeid, node=data.get("node"),
            profile=data.get("profile"),
            baseline=BaselineRecord(**baseline) if baseline else None,
            verdict=VerdictRecord(**verdict) if verdict else None,
        ))

    # -------------------------------------------------------------- the end

    def lease_lost(self) -> str | None:
        """The lease keeper's reason if the session's lease was lost (its file, which every process reads)."""
        return self.state.lease_lost() if self.state is not None else None

    def close(self, pytest_status: int) -> RunRecord:
        """Complete the record: when it ended, what the gate covered, and how the run ended (signal, lease, crash)."""
        from hilt.gate.coverage import judge_coverage
        from hilt.session.rig_session import utc_now

        assert self.record is not None
        record = self.record
        self.pytest_status = pytest_status
        record.finished_at = utc_now()
        unfinished: dict[str, str] = {}
        if self.signal is not None:
            running = list(self.running)
            not_run = [t for t in self.selected if t not in self.done and t not in self.running]
            wanted, blocked_by = self.waiting or (None, None)
            record.interrupted = InterruptRecord(signal=self.signal, phase=self.phase, running=running,
                                                 not_run=not_run,
                                                 booting=self._booting() if self.phase == "boot" else {},
                                                 waiting_for=wanted, blocked_by=blocked_by)
            unfinished = {t: f"was cut off by {self.signal}" for t in running}
            unfinished |= {t: f"did not run ({self.signal} stopped the run first)" for t in not_run}
        record.lease_lost = self.lease_lost()
        record.internal_error = self.internal_error
        expected = record.coverage or CoverageRecord()
        expected.gate_run = bool(self.config.getoption("gate", False) or self.probe_selected)
        record.coverage = judge_coverage(expected, record.metrics, record.tests, record.nodes, self.plans, unfinished)
        return record

    def _booting(self) -> dict[str, str]:
        """Each node's last boot step (the progress also names the rig and the session: not nodes)."""
        nodes = set(self.state.configs) if self.state is not None else set()
        return {node: step for node, step in self.boot_steps.items() if node in nodes}


def _declared(value: str | None) -> list[str] | None:
    """The probe property's list of metrics (``[]``: a probe that says nothing; None: no probe)."""
    if value is None:
        return None
    try:
        names = json.loads(value)
    except ValueError:
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def _plans(config: pytest.Config, node_profiles: dict[str, str]) -> dict[str | None, list]:
    """What each node's probe plan (and the lease's, for a shared profile) will measure, --probe-sizes applied."""
    from hilt.probes.settings import ProbeSettings, parse_sizes, planned_metrics, section_planned
    from hilt.profiles.model import load_profile

    sizes = config.getoption("probe_sizes", None)
    repeats = config.getoption("probe_repeats", None)
    settings = {p: ProbeSettings.from_profile(load_profile(p).probes, parse_sizes(sizes) if sizes else None, repeats)
                for p in set(node_profiles.values())}
    extra = {p: section_planned(load_profile(p)) for p in settings}  # nvbandwidth:, c2c: bandwidth:
    plans: dict[str | None, list] = {n: planned_metrics(settings[p]) + extra[p] for n, p in node_profiles.items()}
    if len(node_profiles) > 1 and len(settings) == 1:
        plans[None] = planned_metrics(next(iter(settings.values())), len(node_profiles))
    return plans


def _hilt_version() -> str:
    from hilt import __version__

    return __version__
