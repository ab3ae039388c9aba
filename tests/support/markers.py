"""The two markers of hilt's own tests (registered in pyproject.toml, explained in docs/testing.md).

``rack``: the test boots a simulated rack (sushy-emulator BMCs, sshd nodes in network namespaces) or a QEMU guest.
Each such test costs seconds to minutes of CPU, needs root and the shared rack lock (racks have fixed names and
subnets). No test module sets it by hand: the conftest of each directory that boots racks calls ``mark_rack`` in
its ``pytest_collection_modifyitems``, naming the whole directory or the modules and tests that boot one, so a
new test in a rack directory is a rack test without anyone remembering. ``make test-fast`` runs ``-m "not rack"``.

``needs_root(why)``: the test needs root (network or mount namespaces, /run/hilt). Run without root it *fails*,
saying why and what to do, before any fixture runs; it is never skipped, so a run without root can never look
green for tests it did not run. Every rack test needs root; ``mark_rack`` adds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest

RACK_ROOT_WHY = "the simulated rack puts its nodes in network namespaces"


def mark_rack(items: Iterable[pytest.Item], directory: Path, only: Iterable[str] = (),
              why: str = RACK_ROOT_WHY) -> None:
    """Mark ``rack`` (and ``needs_root(why)``) on the items under ``directory``: all of them, or those of the
    modules and tests named in ``only`` (``"test_x.py"`` or ``"test_x.py::test_name"``)."""
    directory = directory.resolve()
    chosen = set(only)
    for item in items:
        try:
            rel = Path(item.path).resolve().relative_to(directory)
        except ValueError:
            continue  # another directory's test: this conftest's hook sees every item of the session
        name = f"{rel.as_posix()}::{getattr(item, 'originalname', item.name)}"
        if not chosen or rel.as_posix() in chosen or name in chosen:
            item.add_marker(pytest.mark.rack)
            item.add_marker(pytest.mark.needs_root(why))


def require_root(item: pytest.Item) -> None:
    """Fail ``item`` now, naming why it needs root, when it is marked ``needs_root`` and this is not root."""
    marker = item.get_closest_marker("needs_root")
    if marker is None or os.geteuid() == 0:
        return
    why = marker.args[0] if marker.args else "it needs root"
    pytest.fail(f"needs root: {why}. Run the tests as root (CI does), or leave this test out with "
                f"`make test-fast` if it is a rack test; it is never skipped.", pytrace=False)
