"""hilt's layers are a rule that CI checks (docs/architecture.md; the contracts in pyproject.toml, run by
`make lint` as `lint-imports`): the diagram in the docs is the contract, the tree keeps it, an upward import or
an engine import of the sim breaks it (shown on a copy of hilt/ with the import written in), and hilt/ has no
import cycle, imports inside functions included."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contract(contract_id: str) -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["id"] == contract_id)


def lint(tree: Path) -> subprocess.CompletedProcess:
    """lint-imports on ``tree`` (its pyproject.toml and its hilt/), as `make lint` runs it."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of hilt/ and its contracts, to write a forbidden import into."""
    shutil.copytree(ROOT / "hilt", tmp_path / "hilt", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def append(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code + "\n")


def test_the_diagram_in_the_docs_is_the_layers_contract():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    after_marker = doc[doc.index("<!-- layers:"):]
    diagram = after_marker.split("```text\n", 1)[1].split("```", 1)[0]
    assert diagram.strip().splitlines() == contract("layers")["layers"]


def test_the_tree_keeps_its_contracts():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_layers(tree: Path):
    append(tree / "hilt" / "util" / "extras.py", "from hilt.session import rig_session  # upward: util -> session")
    result = lint(tree)
    assert result.returncode != 0
    assert "hilt.util is not allowed to import hilt.session" in result.stdout
    assert "hilt.util.extras -> hilt.session.rig_session" in result.stdout


def test_an_upward_import_inside_a_function_counts_too(tree: Path):
    append(tree / "hilt" / "fabric" / "topo.py",
           "def _boot():\n    from hilt.provision import boot  # upward, hidden in a function\n\n    return boot")
    result = lint(tree)
    assert result.returncode != 0
    assert "hilt.fabric is not allowed to import hilt.provision" in result.stdout


def test_the_engine_importing_the_sim_breaks_its_contract(tree: Path):
    append(tree / "hilt" / "rollout" / "engine.py", "from hilt.sim import state as _sim_state  # the engine -> sim")
    result = lint(tree)
    assert result.returncode != 0
    assert "hilt.rollout is not allowed to import hilt.sim" in result.stdout


def test_a_new_package_must_be_placed_in_a_layer(tree: Path):
    (tree / "hilt" / "newthing").mkdir()
    (tree / "hilt" / "newthing" / "__init__.py").write_text('"""Somewhere in no layer."""\n')
    result = lint(tree)
    assert result.returncode != 0
    assert "not listed as layers" in result.stdout and "hilt.newthing" in result.stdout



def test_hilt_has_no_import_cycle():
    """Counting every import: at module top, inside functions, and (for a cycle) under TYPE_CHECKING too."""
    graph = grimp.build_graph("hilt", include_external_packages=False)
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                members = frozenset(_strongly_connected(graph, module))
                cycles.add(members)
    assert not [sorted(c) for c in cycles]


def _strongly_connected(graph: grimp.ImportGraph, module: str) -> set[str]:
    """Every module that both imports ``module`` (through any chain) and is imported by it."""
    downstream = graph.find_downstream_modules(module)
    upstream = graph.find_upstream_modules(module)
    return {module} | (downstream & upstream)
