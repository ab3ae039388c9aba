"""hilt's pytest plugin, loaded by the ``pytest11`` entry point: ``pip install hilt`` gives a team all of it.

Three parts, as labgrid's plugin has them: options and hooks (``hooks``), the run collector (``collector``,
a plugin object registered at configure time), and every fixture a suite needs (``rig``: the session, nodes,
profiles, fabric snapshots; ``measure``: probe settings, metric recording, the release gate), the node
scheduling (``schedule``: per-node locks, one xdist scope per node), how a run ends (``ending``: signals, the
lease released, every output written, the exit code) and what a lost lease stops (``lease_watch``: the running
test, at once). pytest registers each module below as a plugin of its own, so a hook or fixture added to one
of them needs nothing here.
"""

from hilt.pytestplugin.state import record_metric_on, session_state, want_rig

# In import order: a plugin module that another imports comes first (hooks imports schedule, rig imports
# lease_watch), so pytest marks it for assert rewriting before anything imports it (PytestAssertRewriteWarning)
pytest_plugins = [
    "hilt.pytestplugin.schedule",
    "hilt.pytestplugin.lease_watch",
    "hilt.pytestplugin.hooks",
    "hilt.pytestplugin.rig",
    "hilt.pytestplugin.measure",
    "hilt.pytestplugin.ending",
]

__all__ = ["record_metric_on", "session_state", "want_rig"]
