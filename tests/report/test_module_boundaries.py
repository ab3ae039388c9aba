"""hilt/report's modules use each other's public names only (issue 24 item 15): the comparison page took the
report page's ``_CSP``/``_STYLE``/``_SCRIPT``, so a rename inside html.py would break compare.py unseen."""

from __future__ import annotations

import ast
from pathlib import Path

from typer.testing import CliRunner

import hilt.report
from hilt.history.open import open_history
from hilt.report.cli import report_app
from hilt.report.style import CSP, SCRIPT, STYLE
from tests.support.nights import driver_upgrade_nights

REPORT = Path(hilt.report.__file__).resolve().parent


def private_imports(path: Path) -> list[str]:
    """``module.name`` for each ``from hilt.x import _name`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hilt."):
            found += [f"{node.module}.{alias.name}" for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_report_modules_import_no_private_names_of_other_modules():
    found = {p.name: private_imports(p) for p in sorted(REPORT.glob("*.py"))}
    assert {name: names for name, names in found.items() if names} == {}


def test_the_report_and_the_comparison_share_one_policy_and_style(tmp_path):
    """Both pages, as `hilt report` writes them, carry the policy, stylesheet and script of hilt.report.style."""
    history = tmp_path / "history.sqlite"
    store = open_history(history)
    for run in driver_upgrade_nights():
        store.append(run)
    report, compare = tmp_path / "report.html", tmp_path / "compare.html"
    for args in (["--output", str(report)], ["--compare", "sim-night-19", "sim-night-20", "--output", str(compare)]):
        done = CliRunner().invoke(report_app, ["--history", str(history), *args])
        assert done.exit_code == 0, done.output
    for page in (report.read_text(), compare.read_text()):
        assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
        assert STYLE in page and f"<script>{SCRIPT}</script>" in page
