"""hilt's hooks and options: the session flow (reserve -> boot -> suites -> gate -> report).

The controlling process owns the rig session; xdist workers read its state file, so each node boots
once per session whatever ``-n`` says. Infrastructure errors raised in a test make it *error* (JUnit
error, Allure broken), never *fail*: a red result must mean the image, not the rack.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from hilt.errors import ConfigError, GateUndecided, HiltError, InfrastructureError
from hilt.exitcodes import ExitCode
from hilt.pytestplugin.collector import RunCollector
from hilt.pytestplugin.identity import item_test_id
from hilt.pytestplugin.schedule import make_scheduler
from hilt.pytestplugin.state import (
    KIND_PROPERTY,
    RIG_WANTED,
    RUN,
    SESSION,
    STARTED,
    STARTING,
    STATE_PATH,
    TEST_PROPERTY,
    WORKERS_SET,
    is_controller,
    mark_probe,
    record_metric_on,
    session_state,
    session_work_dir,
    want_rig,
)
from hilt.util.atomic_file import is_disk_full

log = logging.getLogger(__name__)



def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hilt", "hilt: hardware-in-the-loop validation of GPU server images")
    group.addoption("--rig", default=None, help="rig name from rigs.yaml (default: $HILT_RIG, else its default_rig)")
    group.addoption("--rigs-file", default=os.environ.get("HILT_RIGS", "rigs.yaml"),
                    help="inventory file (default: rigs.yaml, or $HILT_RIGS)")
    group.addoption("--image", default=None,
                    help="image name from rigs.yaml or a URL to boot (default: $HILT_IMAGE, else the rig's)")
    group.addoption("--no-boot", action="store_true", help="do not boot; only verify what runs")
    group.addoption("--hilt-reports", default="reports", help="reports directory (default: reports/)")
    group.addoption("--lease-store", default=None,
                    help="sqlite:///path or etcd://host:port (default: $HILT_LEASE_STORE, else rigs.yaml)")
    group.addoption("--lease-wait", type=float, default=0.0, help="seconds to queue for busy nodes")
    group.addoption("--lease-ttl", type=float, default=60.0, help="lease time to live, renewed by heartbeat")
    group.addoption("--probe-sizes", default=None, help="message sizes, e.g. 1M,16M,1G (default: profile)")
    group.addoption("--probe-repeats", type=int, default=None, help="timed repetitions per size")
    group.addoption("--gate-max-repeats", type=int, default=20, help="sample budget when a verdict is unsure")
    group.addoption("--allow-missing-baseline", action="store_true",
                    help="a metric without baseline does not fail its test")
    group.addoption("--baselines-dir", default=None, help="baselines directory (default: rigs.yaml)")
    group.addoption("--gate", action="store_true",
                    help="this run is a release gate even if it selects no probe (hilt run always is)")
    group.addoption("--allow-ungated", action="store_true",
                    help="a gate whose profiles have no gated baseline entry may pass (it says so)")
    group.addoption("--workers-from-lease", action="store_true",
                    help="with -n: one xdist worker per leased node (what `hilt run` does)")
    parser.addini("hilt_rig_suites", "these tests need a rig session", type="bool", default=False)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Default the JUnit and Allure outputs into the reports directory, before those plugins configure."""
    config.addinivalue_line("markers", "multinode: needs every node of the lease at once")
    config.addinivalue_line("markers", "probe(*metrics): measures these metrics (names, or families ending in "
                            "'.'); they go to the gate, and coverage asks this test why one was not measured")
    if is_controller(config):
        # the run collector is a plugin object of its own: its hooks see its fields, no module state
        collector = RunCollector(config)
        config.stash[RUN] = collector
        config.pluginmanager.register(collector, "hilt-run-collector")
    if not rig_wanted(config):
        return
    reports = Path(config.getoption("hilt_reports"))
    reports.mkdir(parents=True, exist_ok=True)
    if getattr(config.option, "xmlpath", None) is None:
        config.option.xmlpath = str(reports / "junit.xml")
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(reports / "allure-results")


# pytest's options that only list or explain (tests, fixtures, markers, help, version): none may reserve or boot
LISTING_OPTIONS = ("collectonly", "showfixtures", "show_fixtures_per_test", "markers", "help", "version",
                   "setupplan")


def listing_only(config: pytest.Config) -> bool:
    """True when this pytest invocation only lists or explains things (``--fixtures``, ``--co``, ``--help``...)."""
    return any(config.getoption(name, False) for name in LISTING_OPTIONS)


def rig_wanted(config: pytest.Config) -> bool:
    """Whether this session asks for a rig (``--rig``, a suite's ``want_rig``, ``hilt_rig_suites`` in the ini
    file, or hilt's reference suites named with ``--pyargs``); never for a session that only lists things. The
    run's end (hilt.pytestplugin.ending) asks too, to catch SIGTERM only in a session that holds nodes."""
    if listing_only(config):
        return False
    return bool(config.getoption("rig") or config.stash.get(RIG_WANTED, False) or config.getini("hilt_rig_suites")
                or _reference_suites_named(config))


def _reference_suites_named(config: pytest.Config) -> bool:
    """`pytest --pyargs hilt.suites`: pytest loads no conftest of a package named by module, so ask here."""
    if not config.getoption("pyargs", False):
        return False
    return any(str(arg).split("::")[0].split(".")[:2] == ["hilt", "suites"] for arg in config.args)


def _option_or_env(config: pytest.Config, option: str, variable: str) -> str | None:
    """An option's value, else its HILT_* variable (docs/ci.md). The variables name a rig, image or store; they
    never ask for a rig session by themselves, so an exported HILT_RIG does not turn unit tests into a run."""
    return config.getoption(option) or os.environ.get(variable) or None


# ------------------------------------------------------------------ session start


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Reserve and boot the rig. Under xdist the nodes boot in a thread while xdist starts its workers (each
    imports pytest, hilt and the suites: a second of CPU apiece); the workers wait for the state file, and the
    controller joins the boot before it schedules a test (pytest_runtestloop)."""
    config = session.config
    if not is_controller(config):
        config.stash[STATE_PATH] = config.workerinput["hilt_state"]
        return
    if not rig_wanted(config):
        return

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    lock = threading.Lock()
    run = config.stash.get(RUN, None)

    def progress(node: str, what: str) -> None:
        with lock:
            if run is not None:
                run.boot_progress(node, what)
                if run.signal is not None:
                    return  # interrupted: the end says it in one line, not one per node
            if reporter is not None:
                # one write, not write_line's two (text, then newline): a boot thread's line must not take in
                # pytest's header, written meanwhile from the main thread ("...provider=== test session starts")
                reporter.ensure_newline()
                reporter.write(f"hilt: {node}: {what}\n", flush=True)
            log.info("%s: %s", node, what)

    # imported here: only a rig session needs it, and it brings paramiko and requests (0.3 s) that unit-test runs
    # and xdist workers would pay for at start-up
    from hilt.session.rig_session import RigSession

    rig_session = RigSession(
        Path(config.getoption("rigs_file")),
        _option_or_env(config, "rig", "HILT_RIG"),
        _option_or_env(config, "image", "HILT_IMAGE"),
        boot=not config.getoption("no_boot"),
        reports_dir=Path(config.getoption("hilt_reports")),
        lease_store=_option_or_env(config, "lease_store", "HILT_LEASE_STORE"),
        lease_wait_s=config.getoption("lease_wait"),
        lease_ttl_s=config.getoption("lease_ttl"),
        progress=progress,
    )
    config.stash[SESSION] = rig_session
    try:
        planned = rig_session.plan()
    except ConfigError as exc:
        rig_session.finish()
        raise pytest.UsageError(str(exc)) from None
    if planned and config.pluginmanager.get_plugin("dsession") is not None:
        config.stash[STATE_PATH] = str(rig_session.state_path)
        if config.getoption("workers_from_lease") and getattr(config.option, "numprocesses", None):
            _set_workers(config, planned)  # at most one per node; a node found unusable leaves its worker idle
        starting = threading.Thread(target=_start_rig_session, args=(config, rig_session, progress),
                                    name="hilt-session-start", daemon=True)
        config.stash[STARTING] = starting
        starting.start()
        return
    _start_rig_session(config, rig_session, progress)
    _session_started(config)


def _start_rig_session(config: pytest.Config, rig_session, progress) -> None:  # noqa: ANN001
    """Reserve and boot; the outcome goes to config.stash[STARTED]. A state file is written whatever happens, so
    that workers waiting for it never wait for nothing."""
    from hilt.session.rig_session import SessionState, utc_now  # only a rig session pays for it (as above)

    def failed_state(why: str) -> SessionState:
        rig_session.work_dir.mkdir(parents=True, exist_ok=True)
        state = rig_session.state or SessionState(
            run_id=rig_session.run_id, rig=_option_or_env(config, "rig", "HILT_RIG") or "?", rigs_file="",
            image_name=None,
            image=None, boot=False, started_at=utc_now(),  # a run record needs a real start time
        )
        state.error = why
        state.save(rig_session.state_path)
        rig_session.state = state  # the run's end records what the session got to
        return state

    try:
        config.stash[STARTED] = rig_session.start()
    except ConfigError as exc:
        rig_session.finish()
        failed_state(f"{type(exc).__name__}: {exc}")
        config.stash[STARTED] = pytest.UsageError(str(exc))
    except HiltError as exc:
        rig_session.finish()
        config.stash[STARTED] = failed_state(f"{type(exc).__name__}: {exc}")
        progress("session", f"infrastructure error: {exc}")
    except BaseException as exc:
        rig_session.finish()
        failed_state(f"{type(exc).__name__}: {exc}")
        config.stash[STARTED] = exc


def _session_started(config: pytest.Config) -> None:
    """Wait for the rig session's start (a thread under xdist), then hand its state to the run collector."""
    starting = config.stash.get(STARTING, None)
    if starting is not None:
        starting.join()
        del config.stash[STARTING]
    outcome = config.stash.get(STARTED, None)
    if outcome is None:
        return
    del config.stash[STARTED]
    if isinstance(outcome, BaseException):
        raise outcome
    rig_session = config.stash[SESSION]
    config.stash[STATE_PATH] = str(rig_session.state_path)  # an adopted session (hilt rollout) has its own
    config.stash[RUN].start(outcome)
    _workers_from_lease(config, outcome)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session):  # noqa: ANN201 - pluggy's wrapper protocol
    if is_controller(session.config):
        _session_started(session.config)
    return (yield)


def _workers_from_lease(config: pytest.Config, state) -> None:  # noqa: ANN001 - SessionState
    """One xdist worker per usable node: xdist reads the count when it starts its workers, right after this."""
    if not config.getoption("workers_from_lease") or not getattr(config.option, "numprocesses", None):
        return
    if config.stash.get(WORKERS_SET, False):
        return  # sized from the plan before the boot: the workers already run
    _set_workers(config, max(1, len([name for name in state.node_names if name not in state.excluded])))


def _set_workers(config: pytest.Config, count: int) -> None:
    config.option.numprocesses = count
    config.option.tx = ["popen"] * count
    config.stash[WORKERS_SET] = True


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN001, ANN201 - xdist's types
    """Under xdist's default ``--dist load``, schedule per node (hilt/pytestplugin/schedule.py)."""
    state = session_state(config)
    if state is None or config.getoption("dist", "no") != "load":
        return None
    return make_scheduler(config, log, state.node_names)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: without xdist (`-p no:xdist`) pytest must not refuse it
def pytest_configure_node(node) -> None:  # noqa: ANN001 - xdist's WorkerController
    path = node.config.stash.get(STATE_PATH, "")
    node.workerinput["hilt_state"] = path


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "node" not in metafunc.fixturenames:
        return
    state = session_state(metafunc.config)
    if state is None:
        return
    names = state.node_names
    if not names and state.error:
        names = ["(no nodes)"]
    metafunc.parametrize("node", names, ids=names, indirect=True, scope="function")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    state = session_state(config)
    if state is None:
        return
    applicable = _rig_suites(state)
    if applicable is not None:
        keep, drop = [], []
        for item in items:
            (keep if item.path.stem in applicable else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    for item in items:
        item.user_properties.append(("hilt.rig", state.rig))
        item.user_properties.append((TEST_PROPERTY, item_test_id(item)))
        mark_probe(item)


def _rig_suites(state) -> set[str] | None:  # noqa: ANN001 - SessionState
    """The suite modules rigs.yaml says apply to the session's rig (None: all of them)."""
    suites = state.suites
    return {Path(s).stem for s in suites} if suites is not None else None


# ------------------------------------------------------------------ outcomes


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    excinfo = call.excinfo
    if excinfo is None:
        return
    if excinfo.errisinstance((InfrastructureError, GateUndecided)) or is_disk_full(excinfo.value) is not None:
        # a full disk under a test (a report writer in its teardown) is the runner's, not the image's
        kind = "undecided" if excinfo.errisinstance(GateUndecided) else "infrastructure"
        report.user_properties.append((KIND_PROPERTY, kind))
        if excinfo.errisinstance(HiltError) and item.config.getoption("tbstyle", "auto") == "auto":
            # hilt's own message says what broke (a node that never booted: 100 tests, each with the same cause);
            # the traceback through hilt's fixtures says nothing more. --tb=long shows it
            report.longrepr = excinfo.getrepr(style="line", chain=False)
        if report.when == "call":
            # an error, not a failure: the rig broke, not the image (JUnit <error>, Allure broken)
            report.when = "setup"
    elif excinfo.errisinstance(AssertionError) or report.failed:
        # a regression is typed by the gate fixture (it sets the kind before failing); anything else is product
        if not any(name == KIND_PROPERTY for name, _ in report.user_properties):
            report.user_properties.append((KIND_PROPERTY, "product"))


__all__ = ["ExitCode", "record_metric_on", "session_state", "session_work_dir", "want_rig"]
