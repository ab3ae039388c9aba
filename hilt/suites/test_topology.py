"""Topology: the `nvidia-smi topo -m` matrix is the one the platform was designed with."""

import allure
import pytest

from hilt.fabric.compare import compare_topology


def test_topology_matrix(node, profile, fabric_snapshot):
    allure.attach(fabric_snapshot.raw("topo"), name="nvidia-smi topo -m", attachment_type=allure.attachment_type.TEXT)
    diffs = compare_topology(profile, fabric_snapshot.topology())
    if diffs:
        pytest.fail(f"{node.name}: topology differs from profile {profile.name}:\n" + "\n".join(diffs), pytrace=False)
