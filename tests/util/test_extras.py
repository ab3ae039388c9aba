"""A command that needs a missing extra says which one, in one line (the core install holds no sim, etcd, otava)."""

from __future__ import annotations

import sys

import pytest

from hilt.util.extras import MissingExtra


@pytest.fixture
def without(monkeypatch):
    """Make modules unimportable, as in a core-only install."""

    def hide(*modules: str) -> None:
        for name in modules:
            for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                monkeypatch.delitem(sys.modules, loaded)
            monkeypatch.setitem(sys.modules, name, None)

    return hide


def test_etcd_lease_store_names_the_etcd_extra(without):
    from hilt.lease import open_store

    without("etcd3gw", "hilt.lease.etcd_store")
    with pytest.raises(MissingExtra) as err:
        open_store("etcd://127.0.0.1:2379")
    assert "hilt[etcd]" in str(err.value) and "\n" not in str(err.value)


def test_change_points_name_the_report_extra(without):
    from datetime import UTC, datetime

    from hilt.history.series import Series, SeriesPoint
    from hilt.report.changes import detect_changes

    without("otava")
    points = [SeriesPoint(run_id=str(i), started_at=datetime.now(UTC), rig="r", image=None, value=1.0 + i % 2,
                          samples=(1.0,), higher_is_better=True, unit="GB/s") for i in range(30)]
    with pytest.raises(MissingExtra, match=r"hilt\[report\]"):
        detect_changes(Series(key=None, points=points))


def test_simulated_rack_names_the_sim_extra(without):
    from hilt.sim.lifecycle import sim_up

    without("sushy_tools")
    with pytest.raises(MissingExtra, match=r"the simulated rack needs hilt's 'sim' extra .*hilt\[sim\]"):
        sim_up("extras-test", nodes=1)


def test_kubelet_checks_name_the_k8s_extra(without):
    import importlib

    without("grpc", "hilt.k8s.kubelet")
    suite = importlib.import_module("hilt.suites.test_kubernetes")  # collecting the suite needs no gRPC
    from hilt.fabric.nvgroups import NvlinkGroups
    from hilt.profiles.model import KubernetesSpec

    with pytest.raises(MissingExtra) as err:
        suite.read_kubelet(None, KubernetesSpec(), [], NvlinkGroups((), "none"))
    assert "hilt[k8s]" in str(err.value) and "\n" not in str(err.value)
