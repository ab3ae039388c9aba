"""hilt's pytest plugin, loaded by the ``pytest11`` entry point: ``pip install hilt`` gives a team all of it.

Three parts, as labgrid's plugin has them: options and hooks (``hooks``), the run collector (``collector``,
a plugin object registered at configure time), and every fixture a suite needs (``rig``: the session, nodes,
profiles, fabric snapshots; ``measure``: probe settings, metric recording, the release gate). pytest finds
hooks and fixtures by name in this module, hence the imports below.
"""

from hilt.pytestplugin.hooks import (
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_generate_tests,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_sessionstart,
    record_metric_on,
    session_state,
    want_rig,
)
from hilt.pytestplugin.measure import _baselines, lease_settings, probe_settings, record_metric, release_gate
from hilt.pytestplugin.rig import (
    _lease_guard,
    _node_pool,
    _snapshots,
    boot_result,
    expected_image,
    fabric_snapshot,
    hilt_session,
    lease_nodes,
    node,
    profile,
)

__all__ = [
    "_baselines", "_lease_guard", "_node_pool", "_snapshots", "boot_result", "expected_image", "fabric_snapshot",
    "hilt_session", "lease_nodes", "lease_settings", "node", "probe_settings", "profile", "pytest_addoption",
    "pytest_collection_modifyitems", "pytest_configure", "pytest_configure_node", "pytest_generate_tests",
    "pytest_runtest_makereport", "pytest_sessionfinish", "pytest_sessionstart", "record_metric",
    "record_metric_on", "release_gate", "session_state", "want_rig",
]
