"""hilt's pytest plugin, loaded by the ``pytest11`` entry point: ``pip install hilt`` gives a team all of it.

Three parts, as labgrid's plugin has them: options and hooks (``hooks``), the run collector (``collector``,
a plugin object registered at configure time), and every fixture a suite needs (``rig``: the session, nodes,
profiles, fabric snapshots; ``measure``: probe settings, metric recording, the release gate), the node
scheduling (``schedule``: per-node locks, one xdist scope per node), how a run ends (``ending``: signals, the
lease released, every output written, the exit code) and what a lost lease stops (``lease_watch``: the running
test, at once). pytest registers each module below as a plugin of its own, so a hook or fixture added to one
of them needs nothing here.
"""

pytest_plugins = [
    "hilt.pytestplugin.hooks",
    "hilt.pytestplugin.rig",
    "hilt.pytestplugin.measure",
    "hilt.pytestplugin.schedule",
    "hilt.pytestplugin.ending",
    "hilt.pytestplugin.lease_watch",
]

__all__ = ["record_metric_on", "session_state", "want_rig"]


def __getattr__(name: str):  # noqa: ANN202
    """The public helpers, imported on first use: importing ``hooks`` here, before pytest registers it from
    ``pytest_plugins``, would keep pytest from rewriting its asserts (PytestAssertRewriteWarning)."""
    if name in __all__:
        from hilt.pytestplugin import hooks

        return getattr(hooks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
