"""Topology: the `nvidia-smi topo -m` matrix is the one the platform was designed with."""

import allure
import pytest

from hilt.fabric.compare import compare_topology
from hilt.pytestplugin.topology import record_topology
from hilt.run_record import TopologyRecord


def test_topology_matrix(node, profile, fabric_snapshot, request):
    allure.attach(fabric_snapshot.raw("topo"), name="nvidia-smi topo -m", attachment_type=allure.attachment_type.TEXT)
    topology = fabric_snapshot.topology()
    record_topology(request, TopologyRecord.from_parsed(profile, topology))  # the report draws found vs expected
    diffs = compare_topology(profile, topology)
    if diffs:
        pytest.fail(f"{node.name}: topology differs from profile {profile.name}:\n" + "\n".join(diffs), pytrace=False)
