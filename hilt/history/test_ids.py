"""Test identities for runs recorded before hilt recorded them (schema v4 of the history; issue 24).

Those records hold only pytest's node id, a path that depended on how the suites were invoked:
``suites/test_nccl.py::test_nccl_tests[node1]`` from ``pytest suites`` in a repository whose ``suites/`` imports
the reference suites, ``hilt/suites/test_nccl.py::...`` from ``hilt run``. The identity the plugin records now
(hilt.pytestplugin.identity) names the module that defines the test. For an old node id that module is found
from its file and name: a file named as a reference suite whose module defines the test's function or class is
that reference suite (``hilt.suites.test_nccl``), whatever directory ran it; so is a test whose function or
class only one reference suite defines, in whatever module a team imported it into (docs/suites.md); any other
test is its file's own, named as pytest's default import mode names a test module outside a package. (A team
whose test modules sit inside a package, or whose own test shares its name with a reference test, sees its old
runs under those names: one split, at the upgrade.)
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import hilt
from hilt.record.run_record import RunRecord, identity_of

REFERENCE_PACKAGE = "hilt.suites"


@functools.cache
def _reference_suites() -> dict[str, frozenset[str]]:
    """Module file stem -> the names it defines at top level, for every reference suite. Read from the source:
    the history never imports the suites (they import pytest and the plugin)."""
    found: dict[str, frozenset[str]] = {}
    for path in sorted((Path(hilt.__file__).resolve().parent / "suites").glob("test_*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (OSError, SyntaxError, ValueError):
            continue
        found[path.stem] = frozenset(node.name for node in tree.body
                                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
    return found


def legacy_test_id(nodeid: str) -> str:
    """The identity of a test recorded by its node id only (see the module docstring)."""
    path, sep, rest = nodeid.partition("::")
    if not sep or not path.endswith(".py"):
        return nodeid
    stem = path.replace("\\", "/").rsplit("/", 1)[-1][:-3]
    name = rest.split("::", 1)[0].split("[", 1)[0]
    suites = _reference_suites()
    if name in suites.get(stem, ()):
        return identity_of(f"{REFERENCE_PACKAGE}.{stem}", nodeid)
    defining = [module for module, names in suites.items() if name in names]
    if len(defining) == 1:  # a reference test imported into a team's module
        return identity_of(f"{REFERENCE_PACKAGE}.{defining[0]}", nodeid)
    return identity_of(stem, nodeid)


def with_test_ids(record: RunRecord) -> RunRecord:
    """``record`` with every test's identity filled in (the same record when all have one)."""
    if all(t.test_id for t in record.tests):
        return record
    tests = [t if t.test_id else t.model_copy(update={"test_id": legacy_test_id(t.nodeid)}) for t in record.tests]
    return record.model_copy(update={"tests": tests})
