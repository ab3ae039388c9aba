"""What Allure needs beyond allure-pytest's results: environment, categories, history, the CLI.

- environment.properties: the rig, image, driver, NCCL and kernel a reader must see next to results.
- categories.json: sorts failures into product failures, infrastructure problems and regressions by
  the prefixes hilt's plugin puts on messages (``infrastructure:``, ``regression:``) and by status
  (infrastructure errors are ``broken``). Allure takes the first category that matches.
- history: Allure's trend graphs come from the previous report's ``history/`` folder copied into the
  new results before generating; without it every report starts from scratch.
- the CLI: ``allure generate`` from npm (scripts/install_allure.sh), run offline on the JVM.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from hilt.errors import ConfigError
from hilt.record.run_record import RunRecord
from hilt.util.atomic_file import write_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]

CATEGORIES: list[dict[str, object]] = [
    {"name": "Infrastructure problems", "matchedStatuses": ["broken", "failed"],
     "messageRegex": r"(?s).*\binfrastructure:.*"},
    {"name": "Regressions", "matchedStatuses": ["failed", "broken"],
     "messageRegex": r"(?s).*\bregression:.*"},
    {"name": "Infrastructure problems", "matchedStatuses": ["broken"]},
    {"name": "Product failures", "matchedStatuses": ["failed"]},
]


class AllureError(ConfigError):
    """The Allure CLI is missing or failed; the message says how to install or what it printed."""


def _environment_of(record: RunRecord) -> dict[str, str]:
    nodes = record.nodes
    first = nodes[0] if nodes else None

    def pick(key: str, node_value: str | None) -> str:
        return record.versions.get(key) or node_value or ""

    nccl = record.versions.get("nccl") or next(
        (m.labels["nccl_version"] for m in record.metrics if "nccl_version" in m.labels), "")
    env = {
        "rig": record.rig,
        "image": record.image or (first.image_id if first and first.image_id else ""),
        "driver": pick("driver", first.driver if first else None),
        "nccl": nccl,
        "kernel": pick("kernel", first.kernel if first else None),
        "run_id": record.run_id,
        "nodes": ",".join(n.name for n in nodes),
    }
    if record.profile:
        env["profile"] = record.profile
    for key, value in record.versions.items():
        env.setdefault(key, value)
    return env


def _prop_escape(text: str, key: bool = False) -> str:
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    if key:
        for ch in " =:#!":
            out = out.replace(ch, "\\" + ch)
    return out


def write_environment(results_dir: Path | str, record: RunRecord | Mapping[str, object]) -> Path:
    """Write ``environment.properties`` (Java properties, as Allure reads it) into ``results_dir``."""
    env = _environment_of(record) if isinstance(record, RunRecord) else {
        str(k): "" if v is None else str(v) for k, v in record.items()}
    lines = [f"{_prop_escape(k, key=True)}={_prop_escape(v)}" for k, v in env.items() if v != ""]
    return write_atomic(Path(results_dir) / "environment.properties", "\n".join(lines) + "\n")


def write_categories(results_dir: Path | str) -> Path:
    return write_atomic(Path(results_dir) / "categories.json", json.dumps(CATEGORIES, indent=2) + "\n")


def carry_history(report_dir: Path | str, results_dir: Path | str) -> bool:
    """Copy the previous report's ``history/`` into the results; False when there is none yet."""
    source = Path(report_dir) / "history"
    if not source.is_dir():
        return False
    shutil.copytree(source, Path(results_dir) / "history", dirs_exist_ok=True)
    return True


def find_allure() -> Path | None:
    """``$HILT_ALLURE``, else the repo's node_modules (scripts/install_allure.sh), else PATH."""
    configured = os.environ.get("HILT_ALLURE")
    candidates = [Path(configured)] if configured else []
    candidates += [Path.cwd() / "node_modules/.bin/allure", REPO_ROOT / "node_modules/.bin/allure"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("allure")
    return Path(found) if found else None


def build_allure_report(results_dir: Path | str, report_dir: Path | str, timeout_s: float = 300) -> Path:
    """``allure generate --clean`` the results into ``report_dir`` (history carried over first)."""
    results, report = Path(results_dir), Path(report_dir)
    if not results.is_dir():
        raise AllureError(f"{results}: no Allure results (run pytest with --alluredir={results})")
    allure = find_allure()
    if allure is None:
        raise AllureError("allure command line not found: run scripts/install_allure.sh "
                          "(npm allure-commandline, needs Java) or set HILT_ALLURE")
    carry_history(report, results)
    if not (results / "categories.json").exists():
        write_categories(results)
    done = subprocess.run([str(allure), "generate", "--clean", "-o", str(report), str(results)],
                          capture_output=True, text=True, timeout=timeout_s,
                          env=dict(os.environ, ALLURE_NO_ANALYTICS="true"))
    if done.returncode != 0:
        raise AllureError(f"allure generate failed (exit {done.returncode}): "
                          f"{(done.stderr or done.stdout).strip()[-1500:]}")
    return report
