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

import pytest

from hilt.exitcodes import ExitCode
from hilt.run_record import (
    BaselineRecord,
    MetricRecord,
    NodeRecord,
    RunRecord,
    TestRecord,
    VerdictRecord,
)

log = logging.getLogger(__name__)


class RunCollector:
    """Records test reports and metrics into a RunRecord; at the end writes summary, history, metrics.prom."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.state = None
        self.record: RunRecord | None = None
        self.started = False

    @property
    def reports_dir(self) -> Path:
        return Path(self.config.getoption("hilt_reports"))

    def start(self, state) -> None:  # noqa: ANN001 - hilt.session.SessionState
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
        profile = None
        try:
            from hilt.session import node_configs

            if state.rigs_file:
                configs = node_configs(state)
                profile = next(iter(configs.values())).profile if configs else None
        except Exception:  # noqa: BLE001 - provenance only
            profile = None
        image = state.image or {}
        self.record = RunRecord(
            run_id=state.run_id, started_at=state.started_at, rig=state.rig, image=state.image_name,
            image_url=image.get("url"), profile=profile, nodes=nodes,
            versions={"hilt": _hilt_version(), "python": platform.python_version()},
        )

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
        if report.when == "call":  # setup/call/teardown reports all carry the item's properties
            for name, value in report.user_properties:
                if name == "hilt.metric":
                    self._add_metric(report.nodeid, json.loads(value))
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
        message = None
        if report.longrepr is not None and outcome in ("failed", "error", "skipped"):
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)[-500:]
        node = None
        if "[" in report.nodeid:
            node = report.nodeid.rsplit("[", 1)[1].rstrip("]").split("-")[0]
        self.record.tests.append(TestRecord(nodeid=report.nodeid, outcome=outcome, kind=kind, message=message,
                                            duration_s=round(report.duration, 3), node=node))

    def _add_metric(self, nodeid: str, data: dict) -> None:
        assert self.record is not None
        verdict = data.get("verdict")
        baseline = data.get("baseline")
        self.record.metrics.append(MetricRecord(
            name=data["name"], unit=data["unit"], labels=data.get("labels") or {}, samples=data["samples"],
            higher_is_better=data.get("higher_is_better", True), test=nodeid,
            baseline=BaselineRecord(**baseline) if baseline else None,
            verdict=VerdictRecord(**verdict) if verdict else None,
        ))

    # -------------------------------------------------------------- the end

    def _gate(self) -> VerdictRecord:
        assert self.record is not None
        infra = sum(1 for t in self.record.tests if t.kind == "infrastructure")
        undecided = [t for t in self.record.tests if t.kind == "undecided"]
        infra += sum(1 for n in self.record.nodes if not n.booted)
        product = sum(1 for t in self.record.tests if t.outcome == "failed" and t.kind == "product")
        gated = [m for m in self.record.metrics if m.verdict and m.verdict.gated]
        regressions = [m for m in gated if m.verdict.outcome == "regression"]
        unsure = [m for m in gated if m.verdict.outcome == "inconclusive"
                  or (m.verdict.outcome == "unbaselined" and m.verdict.failed)]
        if self.state is not None and self.state.error:
            return VerdictRecord(outcome="inconclusive", reason=f"infrastructure: {self.state.error}")
        if regressions:
            worst = regressions[0]
            return VerdictRecord(outcome="regression",
                                 reason=f"{len(regressions)} metric(s) regressed; first: {worst.verdict.reason}")
        if product:
            return VerdictRecord(outcome="regression", reason=f"{product} product failure(s)")
        if infra:
            return VerdictRecord(outcome="inconclusive",
                                 reason=f"{infra} infrastructure error(s): the rig, not the image, failed")
        if undecided and not unsure:
            return VerdictRecord(outcome="inconclusive",
                                 reason=f"{len(undecided)} test(s) undecided: {undecided[0].message}")
        if unsure:
            return VerdictRecord(outcome="inconclusive",
                                 reason=f"{len(unsure)} metric(s) could not be decided: {unsure[0].verdict.reason}")
        unbaselined = sum(1 for m in gated if m.verdict.outcome == "unbaselined")
        note = f" ({unbaselined} without baseline, allowed)" if unbaselined else ""
        decided = len(gated) - unbaselined
        return VerdictRecord(outcome="pass",
                             reason=f"all tests passed; {decided} gated metric(s) within tolerance{note}")

    def exit_code(self, pytest_status: int) -> int:
        assert self.record is not None
        if pytest_status in (ExitCode.INTERRUPTED, ExitCode.INTERNAL_ERROR, ExitCode.USAGE_ERROR):
            return pytest_status
        gate = self.record.gate
        if gate is not None and gate.outcome == "regression":
            return ExitCode.FAILED
        if any(t.outcome == "failed" for t in self.record.tests):
            return ExitCode.FAILED
        if gate is not None and gate.outcome == "inconclusive":
            return ExitCode.INCONCLUSIVE
        if not self.record.tests:
            return ExitCode.NO_TESTS
        return ExitCode.PASS

    def finish(self, pytest_status: int) -> int:
        from hilt.session import utc_now

        assert self.record is not None
        self.record.finished_at = utc_now()
        self.record.gate = self._gate()
        self.record.exit_code = int(self.exit_code(pytest_status))
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
        terminalreporter.write_line(
            f"hilt: gate {self.record.gate.outcome.upper()}: {self.record.gate.reason} "
            f"(exit {self.record.exit_code}; reports in {self.reports_dir}/)"
        )


def _hilt_version() -> str:
    from hilt import __version__

    return __version__


def _write_summary(record: RunRecord, reports: Path) -> None:
    from hilt.report.summary import write_summary

    write_summary(record, reports)


def _history_path(config: pytest.Config, state=None) -> Path:  # noqa: ANN001 - SessionState | None
    if state is not None and state.history:
        return Path(state.history)  # rigs.yaml as the session read it, not a second reading
    from hilt.inventory import load_inventory

    try:
        return Path(load_inventory(config.getoption("rigs_file")).history)
    except Exception:  # noqa: BLE001 - the run's reports dir is the fallback
        return Path(config.getoption("hilt_reports")) / "history.sqlite"


def _append_history(config: pytest.Config, record: RunRecord, state=None) -> None:  # noqa: ANN001
    if os.environ.get("HILT_NO_HISTORY"):
        return
    from hilt.history import HistoryStore

    HistoryStore(_history_path(config, state)).append(record)


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
