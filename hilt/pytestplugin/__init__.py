"""hilt's pytest plugin, loaded by the ``pytest11`` entry point: ``pip install hilt`` gives a team all of it.

Three parts, as labgrid's plugin has them: options and hooks (``hooks``), the run collector (``collector``,
a plugin object registered at configure time), and every fixture a suite needs (``rig``: the session, nodes,
profiles, fabric snapshots; ``measure``: probe settings, metric recording, the release gate), and the node
scheduling (``schedule``: per-node locks, one xdist scope per node). pytest registers each module below as a
plugin of its own, so a hook or fixture added to one of them needs nothing here.
"""

from hilt.pytestplugin.state import record_metric_on, session_state, want_rig

pytest_plugins = [
    "hilt.pytestplugin.hooks",
    "hilt.pytestplugin.rig",
    "hilt.pytestplugin.measure",
    "hilt.pytestplugin.schedule",
]

__all__ = ["record_metric_on", "session_state", "want_rig"]
