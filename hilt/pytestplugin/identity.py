"""A test's identity, the same however the suites were invoked.

pytest's node id is a path relative to the rootdir: ``pytest suites`` records ``suites/test_nccl.py::...``,
``hilt run`` (``--pyargs hilt.suites``) records ``hilt/suites/test_nccl.py::...``, and a team that imports a
reference suite into its own module records that module's path, so one test had as many histories as ways of
running it. The module that *defines* the test function (or its class) is the same in every case; the identity
is that module's name and pytest's name for the test within it (``hilt.suites.test_nccl::test_nccl_tests[n1]``).
A test module without ``__init__.py`` around it is named by its file (pytest's default import mode), so a
team's own tests keep their identity when run from another directory too.
"""

from __future__ import annotations

import pytest

from hilt.record.run_record import identity_of


def item_test_id(item: pytest.Item) -> str:
    """The identity of a collected test; pytest's node id for items that are not Python functions."""
    owner = getattr(item, "cls", None) or getattr(item, "function", None)
    module = getattr(owner, "__module__", None)
    return identity_of(module, item.nodeid) if isinstance(module, str) and module else item.nodeid
