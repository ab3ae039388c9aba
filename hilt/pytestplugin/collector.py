"""The run collector: a plugin object that collects a run as it happens and writes what CI and people read.

Created and registered by hilt's ``pytest_configure`` in the controlling process (the only process, or the
xdist controller, which receives every worker's reports), kept in ``config.stash``.

Everything is written even when the run aborts: the reports of tests that completed are the evidence a
person needs most when something went wrong.
"""

from __future__ import annotations

import io
import json
import logging
import os
import platform
from pathlib import Path
from typing import Any

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
    MetricRecord,
    NodeRecord,
    RunRecord,
    TestRecord,
    TopologyRecord,
    VerdictRecord,
    firmware_from_report,
)
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
    """Records test reports and metrics into a RunRecord; at the end writes summary, history, metrics.prom."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.state = None
        self.record: RunRecord | None = None
        self.started = False
        self.probe_selected = False  # a test feeding the gate was selected (or reported): the run is a gate
        self.plans: dict[str | None, list] = {}  # node (None: the lease) -> what its probe plan measures

    @property
    def reports_dir(self) -> Path:
        return Path(self.config.getoption("hilt_reports"))

    def start(self, state) -> None:  # noqa: ANN001 - hilt.session.rig_session.SessionState
        self.state = state
        self.started = True
        nodes = []
        for name in state.node_names:
            result = state.result(name)
            if result is None:
                nodes.append(NodeRecord(name=name, booted=False, error=state.excluded.get(name)))
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
        """A run that selects a probe (a test using the release gate, or marked `probe`) is a gate.

        Asked once collection is final: ``pytest_collection_modifyitems`` saw the items before pytest's own
        ``-k``/``-m`` deselection (and the rig's suites), so ``-k trust`` counted the deselected probes."""
        self.probe_selected = self.probe_selected or any(probe_metrics(item) is not None for item in session.items)

    def junit_properties(self) -> list[tuple[str, str]]:
        """The run's provenance for JUnit's ``<testsuite>``: run id, rig, image, each node's identity."""
        if self.record is None:
            return []
        props = [("hilt.run_id", self.record.run_id), ("hilt.rig", self.record.rig),
                 ("hilt.image", self.record.image or "")]
        for node in self.record.nodes:
            for field in ("image_id", "kernel", "driver", "bios_version", "bmc_firmware", "boot_s"):
                value = getattr(node, field)
                if value is not None:
                    props.append((f"hilt.node.{node.name}.{field}", str(value)))
        return props

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.add_report(report)

    def pytest_terminal_summary(self, terminalreporter) -> None:  # noqa: ANN001 - pytest's TerminalReporter
        if self.started:
            self.print_summary(terminalreporter)

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
        self.record.metrics.append(MetricRecord(
            name=data["name"], unit=data["unit"], labels=data.get("labels") or {}, samples=data["samples"],
            higher_is_better=data.get("higher_is_better", True), test=nodeid, node=data.get("node"),
            profile=data.get("profile"),
            baseline=BaselineRecord(**baseline) if baseline else None,
            verdict=VerdictRecord(**verdict) if verdict else None,
        ))

    # -------------------------------------------------------------- the end

    def finish(self, pytest_status: int) -> int:
        from hilt.session.rig_session import utc_now

        assert self.record is not None
        from hilt.gate.coverage import judge_coverage
        from hilt.gate.verdict import run_verdict

        record = self.record
        record.finished_at = utc_now()
        expected = record.coverage or CoverageRecord()
        expected.gate_run = bool(self.config.getoption("gate", False) or self.probe_selected)
        record.coverage = judge_coverage(expected, record.metrics, record.tests, record.nodes, self.plans)
        record.gate, code = run_verdict(record, pytest_status,
                                        session_error=self.state.error if self.state is not None else None,
                                        allow_ungated=bool(self.config.getoption("allow_ungated", False)))
        record.exit_code = code
        self._write_outputs()
        return self.record.exit_code

    def _write_outputs(self) -> None:
        """Each output on its own: one failing writer must not cost the others."""
        assert self.record is not None
        reports = self.reports_dir
        reports.mkdir(parents=True, exist_ok=True)
        record = self.record
        (reports / "summary.json").write_text(record.model_dump_json(indent=2))
        writers = [
            ("summary", lambda: _write_summary(record, reports)),
            ("history", lambda: _append_history(self.config, record, self.state)),
            ("metrics.prom", lambda: _write_prom(record, reports)),
            ("allure environment", lambda: _write_allure(self.config, record)),
            ("junit properties", lambda: _add_junit_properties(self.config, self.junit_properties())),
        ]
        for what, write in writers:
            try:
                write()
            except Exception as exc:  # noqa: BLE001 - report the failure, keep writing the rest
                log.error("hilt: writing %s failed: %s", what, exc)

    def print_summary(self, terminalreporter) -> None:  # noqa: ANN001
        if self.record is None or self.record.gate is None:
            return
        try:
            from rich.console import Console

            from hilt.report.summary import print_summary

            text = io.StringIO()
            print_summary(self.record, Console(file=text, force_terminal=False, width=120))
            for line in text.getvalue().splitlines():
                terminalreporter.write_line(line)
        except Exception as exc:  # noqa: BLE001
            terminalreporter.write_line(f"hilt gate: {self.record.gate.outcome}: {self.record.gate.reason} ({exc})")
        gate = self.record.gate
        # "gate: not run (...)" says what it is; a verdict is named first ("gate INCONCLUSIVE: ...")
        verdict = gate.reason if gate.outcome == "not_run" else f"gate {gate.outcome.upper()}: {gate.reason}"
        terminalreporter.write_line(f"hilt: {verdict} (exit {self.record.exit_code}; reports in {self.reports_dir}/)")


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


def _write_summary(record: RunRecord, reports: Path) -> None:
    from hilt.report.summary import write_summary

    write_summary(record, reports)


def _history_path(config: pytest.Config, state=None) -> tuple[str | Path, Any]:  # noqa: ANN001 - SessionState
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


def _append_history(config: pytest.Config, record: RunRecord, state=None) -> None:  # noqa: ANN001
    if os.environ.get("HILT_NO_HISTORY"):
        return
    from hilt.history.open import open_history

    open_history(*_history_path(config, state)).append(record)


def _write_prom(record: RunRecord, reports: Path) -> None:
    from hilt.report.prometheus import write_metrics_prom

    write_metrics_prom(record, reports / "metrics.prom")


def _write_allure(config: pytest.Config, record: RunRecord) -> None:
    results = getattr(config.option, "allure_report_dir", None)
    if not results:
        return
    from hilt.report.allure_env import write_categories, write_environment

    write_environment(Path(results), record)
    write_categories(Path(results))


def _add_junit_properties(config: pytest.Config, props: list[tuple[str, str]]) -> None:
    """Add the run's provenance to the ``<testsuite>`` of the JUnit file pytest has just written.

    ``record_testsuite_property`` is the public way, but it records nothing under xdist (pytest issue 7767) and
    hilt's runs use ``-n``; so the controller adds the properties to the written file (a public format).
    pytest writes it in its own ``pytest_sessionfinish``, before hilt's (``trylast``) ends the run.
    """
    xmlpath = getattr(config.option, "xmlpath", None)
    if not xmlpath or not props or not Path(xmlpath).exists():
        return
    from xml.etree import ElementTree

    tree = ElementTree.parse(xmlpath)
    root = tree.getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return
    properties = suite.find("properties")
    if properties is None:
        properties = ElementTree.Element("properties")
        suite.insert(0, properties)
    for name, value in props:
        ElementTree.SubElement(properties, "property", name=name, value=value)
    tree.write(xmlpath, encoding="utf-8", xml_declaration=True)
