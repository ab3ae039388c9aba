"""pytest sessions in a subprocess, as a user or CI starts them: against a rig (``run_suites``: the suites of this
repository, reports in a directory beside the rigs file) or in a directory outside this repository
(``run_pytest``), and the outcomes JUnit recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository


XDIST_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


def session_env(**extra: str) -> dict[str, str]:
    """The environment of a pytest session a test starts: this process's, less what pytest-xdist sets in its
    workers (``make test-fast`` runs under ``-n``), so the inner session never takes itself for one of our
    workers; plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in XDIST_VARIABLES}
    env.update(extra)
    return env


@dataclass
class Run:
    code: int
    output: str


@dataclass
class Session:
    code: int
    output: str
    reports: Path


def run_pytest(where: Path, *args: str) -> Run:
    env = session_env(PYTHONPATH=str(where), HILT_NO_HISTORY="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=where,
                          capture_output=True, text=True, timeout=120, env=env)
    return Run(proc.returncode, proc.stdout + proc.stderr)


def run_suites(rigs: Path, *args: str, suites: str = "suites/test_boot.py", timeout: float = 300) -> Session:
    reports = rigs.parent / "reports"
    env = session_env(HILT_NO_HISTORY="")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *suites.split(), "--rigs-file", str(rigs), "--hilt-reports", str(reports),
         "-p", "no:cacheprovider", "-rA", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
    )
    return Session(proc.returncode, proc.stdout + proc.stderr, reports)


def outcomes(session) -> dict[str, tuple[str, str]]:
    """testcase name -> (outcome, message)"""
    found = {}
    for case in ET.parse(session.reports / "junit.xml").getroot().iter("testcase"):
        name = f"{case.get('classname').rsplit('.', 1)[-1]}::{case.get('name')}"
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                found[name] = (tag, (element.get("message") or "") + (element.text or ""))
                break
        else:
            found[name] = ("passed", "")
    return found


def as_typed(state: Path, *argv: str, reports: Path | None = None, cwd: Path = ROOT,
             timeout: float = 900) -> Session:
    """A command exactly as a user types it in this repository (``pytest ...`` or ``hilt ...``): the shipped
    rigs.yaml and baselines, default options. Only where the state goes differs: ``$XDG_STATE_HOME`` (the lease
    store and the history, docs/leases.md) is ``state``, and no ``HILT_*`` variable of the caller leaks in.
    ``reports``: passed as ``--hilt-reports`` to pytest (where a run writes, not how it runs)."""
    command = typed_command(*argv)
    if argv[0] == "pytest" and reports is not None:
        command += ["--hilt-reports", str(reports)]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=typed_env(state))
    return Session(proc.returncode, proc.stdout + proc.stderr, reports or cwd / "reports")


def typed_env(state: Path) -> dict[str, str]:
    """as_typed's environment: no ``HILT_*`` variable of the caller, ``$XDG_STATE_HOME`` set to ``state``."""
    env = {k: v for k, v in session_env().items() if not k.startswith("HILT_")}
    env["XDG_STATE_HOME"] = str(state)
    return env


def typed_command(program: str, *rest: str) -> list[str]:
    """``pytest ...`` or ``hilt ...`` as the console script the user runs, from this environment."""
    script = Path(sys.executable).parent / program
    return [str(script), *rest] if script.is_file() else \
        [sys.executable, "-m", "pytest" if program == "pytest" else "hilt.cli", *rest]
