"""Booting images on the simulated rack: parallel boots, proof of the new image, and misbehaving nodes.

One 4-node sim for the module; each fault test uses its own node, so a fault cannot leak into another test:
node1 old OS lingers, node2 never boots, node3 drops SSH, node4 changes its host key (for good: last).
"""

from __future__ import annotations

import pytest

from hilt.bmc import Bmc
from hilt.errors import NodeError
from hilt.node.ssh import Node, fingerprint, parse_host_key
from hilt.provision.boot import NodeState, provision
from tests.support.sim import Sim, start_sim


@pytest.fixture(scope="module")
def sim(request, tmp_path_factory) -> Sim:
    sim = start_sim(request, tmp_path_factory.mktemp("prov"), name="tprov", subnet=231, nodes=4)
    results = provision(sim.nodes, *sim.image("good"), poll_s=0.2, max_poll_s=1.0)
    assert all(r.ok for r in results.values()), {n: r.error for n, r in results.items()}
    return sim


@pytest.fixture
def faults(sim):
    yield sim.control
    sim.control.clear_faults()


def bmc_inventory(sim: Sim, node: str):
    with Bmc.from_config(sim.nodes[node]) as bmc:
        return bmc.inventory()


def states(result) -> list[str]:
    return [s.state for s in result.steps]


def test_four_nodes_boot_at_once_and_prove_the_new_image(sim):
    name, image = sim.image("good")
    before = {n: Node(n, cfg).boot_id() for n, cfg in sim.nodes.items()}

    results = provision(sim.nodes, name, image, poll_s=0.2, max_poll_s=1.0)

    assert sorted(results) == ["node1", "node2", "node3", "node4"]
    for node, r in results.items():
        assert r.ok and r.state == NodeState.VERIFIED, r.error
        assert r.old_boot_id == before[node] and r.boot_id and r.boot_id != r.old_boot_id
        assert (r.image_id, r.kernel, r.driver) == (image.identity.image_id, image.identity.kernel,
                                                     image.identity.driver)
        assert states(r) == ["unknown", "off", "booting", "reachable", "verified"]
    # In parallel: every node was booting before any node was verified (an order, not a timing).
    assert max(r.steps[2].at for r in results.values()) < min(r.steps[-1].at for r in results.values())
    # Firmware versions come from the BMC's inventory, as the BMC reports them.
    inventory = bmc_inventory(sim, "node1")
    assert inventory.bmc_firmware
    assert (results["node1"].bmc_firmware, results["node1"].bios_version) == (inventory.bmc_firmware,
                                                                               inventory.bios_version)


def test_old_os_still_answering_is_not_taken_as_booted(sim, faults):
    faults.set_fault("node1", "old_os_lingers", seconds=3)

    result = provision(sim.some("node1"), *sim.image("good"), poll_s=0.2, max_poll_s=1.0)["node1"]

    assert result.ok, result.error
    assert result.old_boot_id and result.boot_id != result.old_boot_id
    waited = [s for s in result.steps if "old OS still answers" in s.detail]
    assert len(waited) == 1 and result.old_boot_id[:8] in waited[0].detail
    assert states(result) == ["unknown", "off", "booting", "booting", "reachable", "verified"]
    assert Node("node1", sim.nodes["node1"]).boot_id() == result.boot_id


def test_node_that_never_comes_up_fails_with_evidence_others_boot(sim, faults):
    faults.set_fault("node2", "never_boot")
    name, image = sim.image("good", boot_timeout_s=5.0)
    nodes = sim.some("node2", "node3")
    # The node's serial console, as a rig names it (the sim writes one per node).
    nodes["node2"] = nodes["node2"].model_copy(
        update={"console": str(sim.control.state_dir / "nodes" / "node2" / "console.log")})

    results = provision(nodes, name, image, poll_s=0.2, max_poll_s=1.0)

    dead, alive = results["node2"], results["node3"]
    assert alive.ok and alive.boot_id != alive.old_boot_id, alive.error
    assert not dead.ok and dead.state == NodeState.FAILED
    assert dead.error.startswith("node node2 did not come up within 5 s")
    assert dead.boot_s < 5.0 + 5.0  # gave up at the image's boot timeout, not later
    evidence = dead.evidence
    # What the BMC said (the sim's BMC keeps no log service and no BootProgress, so those are empty), and
    # that it was powered on: the OS, not power, is what failed.
    assert "bmc_log" in evidence and "boot_progress" in evidence and "bmc_evidence_errors" not in evidence
    assert evidence["bmc_power_state"] == "On"
    assert "booting" in evidence["phases_s"] and evidence["ssh_error"] == "SSH never answered"
    assert "SSH never comes up" in evidence["console"]  # what the console said, where a person looks first
    assert [s["state"] for s in evidence["steps"]][-1] == "failed"


def test_ssh_connection_dropped_between_commands_is_reconnected(sim, faults, tmp_path):
    script = tmp_path / "probe.sh"
    script.write_text("echo two\n")
    with Node("node3", sim.nodes["node3"]) as node:
        assert node.run(["echo", "one"]).stdout == "one\n"
        assert faults.set_fault("node3", "ssh_drop")["dropped"] >= 1  # our session was the one killed
        assert node.run(["echo", "again"]).stdout == "again\n"
        assert faults.set_fault("node3", "ssh_drop")["dropped"] >= 1
        node.upload(script, "/tmp/hilt-probe.sh")
        assert node.run(["sh", "/tmp/hilt-probe.sh"]).stdout == "two\n"


def test_no_boot_only_verifies_what_runs(sim):
    before = Node("node3", sim.nodes["node3"]).boot_id()

    result = provision(sim.some("node3"), *sim.image("good"), boot=False)["node3"]

    assert result.ok and result.boot_id == result.old_boot_id == before, result.error
    assert result.image_id == sim.image("good")[1].identity.image_id
    assert states(result) == ["unknown", "reachable", "verified"]


def test_changed_host_key_is_refused_and_fails_only_that_node(sim, faults):
    pinned = fingerprint(parse_host_key(sim.nodes["node4"].ssh.host_key))
    faults.set_fault("node4", "host_key_changed")

    results = provision(sim.some("node3", "node4"), *sim.image("good"), poll_s=0.2, max_poll_s=1.0)

    assert results["node3"].ok, results["node3"].error
    changed = results["node4"]
    assert not changed.ok and "CHANGED" in changed.error and f"expected {pinned}" in changed.error
    assert "did not come up" not in changed.error  # refused at once, not retried until the timeout
    assert changed.evidence["ssh_error"] == changed.error
    with pytest.raises(NodeError, match=r"CHANGED: got ssh-ed25519 SHA256:\S+, expected SHA256:") as info:
        Node("node4", sim.nodes["node4"]).run(["true"])
    assert pinned in str(info.value)


def test_uefi_http_boot_method_boots_the_image_from_its_url(sim):
    """boot_method http: one-time UefiHttp with HttpBootUri; the simulated BMC's host fetches and boots the URL."""
    name, image = sim.image("good", boot_method="http")
    result = provision(sim.some("node2"), name, image, poll_s=0.2, max_poll_s=1.0)["node2"]
    assert result.ok, result.error
    assert (result.image_id, result.kernel) == (image.identity.image_id, image.identity.kernel)
    assert any("via http" in s.detail for s in result.steps)
    cfg = sim.nodes["node2"].bmc
    with Bmc.from_config(cfg) as bmc:
        boot = bmc._system().body["Boot"]
    assert (boot["BootSourceOverrideTarget"], boot["HttpBootUri"]) == ("UefiHttp", image.url)
