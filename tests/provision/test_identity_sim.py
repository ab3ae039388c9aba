"""Node identity on the simulated rack: each node's SMBIOS UUID is its sushy System's; swapped BMC addresses
in the rig are caught at provisioning, and only the two swapped nodes pay for it."""

from __future__ import annotations

import pytest

from hilt.provision.boot import NodeState, provision
from tests.support.sim import start_sim


@pytest.fixture(scope="module")
def swapped(request, tmp_path_factory):
    return start_sim(request, tmp_path_factory.mktemp("ident"), name="tident", subnet=233, nodes=3,
                     swap_bmcs=["node1", "node2"])


def test_swapped_bmcs_fail_both_nodes_with_identity_and_the_rest_runs(swapped):
    name, image = swapped.image("good")
    results = provision(swapped.nodes, name, image, poll_s=0.2, max_poll_s=1.0)

    third = results["node3"]
    assert third.ok and third.state == NodeState.VERIFIED, third.error
    assert third.identity["status"] == "verified" and third.identity["host"]["source"] == "dmi"
    assert third.identity["host"]["uuid"] == third.identity["bmc_system"]["uuid"]
    assert third.identity["why"] == "UUID and serial match"
    assert third.identity["host"]["serial"] == third.identity["bmc_system"]["serial"] == "SIM-node3"
    for node, other in (("node1", "node2"), ("node2", "node1")):
        r = results[node]
        assert not r.ok and r.state == NodeState.UNKNOWN
        cfg = swapped.nodes[node]
        assert f"node {node}: identity mismatch (UUID and serial differ)" in r.error
        assert f"ssh {cfg.ssh.host}:{cfg.ssh.port}" in r.error and cfg.bmc.url in r.error
        # both identities recorded: the host's is what the other node's BMC manages
        assert r.identity["host"]["uuid"] == results[other].identity["bmc_system"]["uuid"]
        assert r.identity["host"]["uuid"] != r.identity["bmc_system"]["uuid"]
