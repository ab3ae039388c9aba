"""The multi-node NVLink domain: every GPU's fabric trained and healthy (per node), the lease's nodes one domain
(one ClusterUUID and clique), and IMEX up with every node ready and seeing all of them (lease-wide).

Applies to the nodes whose profile has an `nvlink_domain:` section (docs/fabric.md); a lease with none skips.
A GPU still training fails test_fabric_state only: test_one_domain leaves it out, so one fault fails one check.
"""

from __future__ import annotations

import logging

import allure
import pytest

from hilt.errors import NodeError, ParseError
from hilt.fabric.fusioncheck import check_domain, check_fabric, check_imex
from hilt.profiles.model import load_profile
from hilt.pytestplugin.fusion import record_domain, record_imex
from hilt.record.run_record import DomainRecord, FabricGpuRecord, ImexNodeRecord, ImexRecord

log = logging.getLogger(__name__)


def _domain_nodes(lease_nodes, imex: bool = False) -> dict:
    """The lease's nodes whose profile names a domain (and IMEX, with ``imex``), with that section."""
    out = {}
    for node in lease_nodes:
        spec = load_profile(node.config.profile).nvlink_domain
        if spec is not None and (spec.imex or not imex):
            out[node.name] = (node, spec)
    return out


@pytest.fixture
def nvlink_domain_spec(profile):
    """The profile's `nvlink_domain:` section; the test skips (not applicable) before reading the node without one."""
    if profile.nvlink_domain is None:
        pytest.skip(f"profile {profile.name} has no nvlink_domain: section (the node joins no NVLink domain)")
    return profile.nvlink_domain


def test_fabric_state(node, profile, nvlink_domain_spec, fusion_snapshot, request):
    spec = nvlink_domain_spec
    allure.attach(fusion_snapshot.raw("query"), name="nvidia-smi -q -x", attachment_type=allure.attachment_type.XML)
    queries = fusion_snapshot.gpu_queries()
    problems = check_fabric(spec, queries, profile.gpu_count)
    try:  # the report's fabric picture; a bug in recording it must not hide this test's verdict
        gpus = [FabricGpuRecord(gpu=i, pci_bus_id=q.pci_bus_id, **({
            "state": q.fabric.state, "status": q.fabric.status, "clique_id": q.fabric.clique_id,
            "cluster_uuid": q.fabric.cluster_uuid, "health": q.fabric.health} if q.fabric else {}))
            for i, q in enumerate(queries)]
        record_domain(request, DomainRecord(profile=profile.name, gpus=gpus, problems=problems))
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: fabric state not recorded for the report: %s", node.name, exc)
    if problems:
        pytest.fail(f"{node.name}: NVLink fabric differs from profile {profile.name}:\n" + "\n".join(problems),
                    pytrace=False)


def test_one_domain(lease_nodes, request):
    members = _domain_nodes(lease_nodes)
    if not members:
        pytest.skip("no node of the lease has a profile with an nvlink_domain: section")
    lease_fusion_snapshots = request.getfixturevalue("lease_fusion_snapshots")  # read only where it applies
    spec = next(iter(members.values()))[1]
    by_node = {name: lease_fusion_snapshots[name].gpu_queries() for name in members}
    problems = check_domain(spec, by_node)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_imex_domain(lease_nodes, request):
    members = _domain_nodes(lease_nodes, imex=True)
    if not members:
        pytest.skip("no node of the lease has a profile whose nvlink_domain: expects IMEX")
    lease_fusion_snapshots = request.getfixturevalue("lease_fusion_snapshots")  # read only where it applies
    views, records = {}, {}
    for name in members:
        snapshot = lease_fusion_snapshots[name]
        allure.attach(snapshot.raw("imex"), name=f"{name}: nvidia-imex-ctl -N",
                      attachment_type=allure.attachment_type.TEXT)
        try:
            view = views[name] = snapshot.imex()
            records[name] = ImexRecord(domain_state=view.domain_state, nodes=[
                ImexNodeRecord(index=n.index, address=n.address, status=n.status, version=n.version)
                for n in view.nodes], connections={f"{a}-{b}": code for (a, b), code in view.connections.items()})
        except (NodeError, ParseError) as exc:
            views[name] = str(exc).removeprefix(f"{name}: ")  # check_imex names the node
            records[name] = ImexRecord(domain_state="unknown", error=views[name][:300])
    addresses = {name: list(dict.fromkeys([node.address, *lease_fusion_snapshots[name].addresses()]))
                 for name, (node, _) in members.items()}
    try:
        record_imex(request, records)
    except Exception as exc:  # noqa: BLE001
        log.warning("IMEX views not recorded for the report: %s", exc)
    problems = check_imex(views, addresses)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
