"""Topology: the `nvidia-smi topo -m` matrix is the one the platform was designed with."""

import logging

import allure
import pytest

from hilt.fabric.compare import compare_topology
from hilt.pytestplugin.topology import record_topology
from hilt.record.run_record import TopologyRecord

log = logging.getLogger(__name__)


def test_topology_matrix(node, profile, fabric_snapshot, request):
    allure.attach(fabric_snapshot.raw("topo"), name="nvidia-smi topo -m", attachment_type=allure.attachment_type.TEXT)
    topology = fabric_snapshot.topology()
    diffs = compare_topology(profile, topology)
    try:  # the report's fabric picture; a bug in drawing it must not hide this test's verdict
        record_topology(request, TopologyRecord.from_parsed(profile, topology))
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: topology not recorded for the report: %s", node.name, exc)
    if diffs:
        pytest.fail(f"{node.name}: topology differs from profile {profile.name}:\n" + "\n".join(diffs), pytrace=False)
