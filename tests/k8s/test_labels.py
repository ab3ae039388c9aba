"""Verified facts -> labels: every label traces to a check that passed on that node in that run.

The property test draws seeded random run records (nodes, test outcomes, duplicated and misplaced reports, gate
verdicts, topologies, profiles) and checks the labels against this file's own table of what each label rests on,
not against the code's: a label for a failed, errored, skipped, missing or other node's check fails it, and so
does a label the record entitles but the function leaves out.
"""

from __future__ import annotations

import random
import re

import pytest

from hilt.fabric.topo import parse_topology
from hilt.k8s.labels import ALLOWLIST, key_problem, topology_groups, value_problem, verified_facts, verified_labels
from hilt.profiles.model import load_profile
from hilt.record.run_record import NodeRecord, RunRecord, TopologyRecord, VerdictRecord
from hilt.record.run_record import TestRecord as Report
from hilt.sim.fabric_view import FabricView

# what each label rests on, written here independently of hilt.k8s.labels
GATE = "gate"
REQUIRES = {
    "hilt.gate": [GATE], "hilt.run": [GATE], "hilt.profile": [GATE], "hilt.image": [GATE],
    "nvlink.fabric": [("test_topology", "test_topology_matrix"), ("test_nvlink", "test_nvlink_links_active")],
    "nvlink.groups": [("test_topology", "test_topology_matrix"), ("test_nvlink", "test_nvlink_links_active")],
    "nvlink.group-size": [("test_topology", "test_topology_matrix"), ("test_nvlink", "test_nvlink_links_active")],
    "nvlink.c2c": [("test_c2c", "test_c2c_links")],
    "trust.secureboot": [("test_trust", "test_secure_boot")],
}
CHECKS = sorted({c for reqs in REQUIRES.values() for c in reqs if c != GATE}) + [("test_nvml", "test_driver_and_gpus")]
K8S_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
NODES = ["gpu-01", "r3-u17.gpu", "node_7"]
IMAGE_IDS = ["hilt-sim-good", "img 1.4.2 (rc)", "a" * 70]


def _topology(kind: str, profile: str) -> TopologyRecord | None:
    if kind == "none":
        return None
    p = load_profile(profile)
    record = TopologyRecord.from_parsed(p, parse_topology(FabricView(p, {}).topo()))
    if kind == "no-nvlink":
        found = [[("X" if i == j else "SYS") if cell is not None else None for j, cell in enumerate(row)]
                 for i, row in enumerate(record.found)]
        record = record.model_copy(update={"found": found})
    return record


def _random_record(rng: random.Random) -> tuple[RunRecord, dict[str, str]]:
    nodes = rng.sample(NODES, rng.randint(1, 3))
    profiles = {n: rng.choice(["sim-4gpu", "sim-islands", "hgx-h100-8gpu"]) for n in nodes}
    records, tests = [], []
    for n in nodes:
        records.append(NodeRecord(name=n, booted=rng.random() > 0.1, image_id=rng.choice(IMAGE_IDS),
                                  topology=_topology(rng.choice(["none", "found", "found", "no-nvlink"]), profiles[n])))
        for module, function in CHECKS:
            for _ in range(rng.choice([0, 1, 1, 1, 2])):
                where = rng.choice(["suites", "hilt/suites", "team/checks"])
                owner = n if rng.random() > 0.1 else rng.choice([None, *NODES])  # now and then another node's
                outcome = rng.choice(["passed", "passed", "passed", "failed", "error", "skipped"])
                tests.append(Report(nodeid=f"{where}/{module}.py::{function}[{owner or 'lease'}]", outcome=outcome,
                                    node=owner))
    gate = rng.choice([None, "pass", "pass", "regression", "inconclusive", "not_run"])
    record = RunRecord(run_id=rng.choice(["20260301T020000-abc123", "run with spaces"]),
                       started_at="2026-03-01T02:00:00Z", rig="sim", nodes=records, tests=tests,
                       gate=VerdictRecord(outcome=gate, reason="r") if gate else None, node_profiles=profiles)
    return record, profiles


def _passed(record: RunRecord, node: str, requirement) -> bool:
    if requirement == GATE:
        return record.gate is not None and record.gate.outcome == "pass"
    module, function = requirement
    mine = [t for t in record.tests if t.node == node and t.nodeid.split("::")[0].endswith(f"/{module}.py")
            and t.nodeid.split("::")[1].split("[")[0] == function]
    return bool(mine) and all(t.outcome == "passed" for t in mine)


@pytest.mark.parametrize("seed", range(200))
def test_every_label_traces_to_a_passed_check_of_that_run(seed):
    rng = random.Random(seed)
    record, profiles = _random_record(rng)
    for node in profiles:
        profile = load_profile(profiles[node])
        labels = verified_labels(record, node, profile)
        for name, value in labels.items():
            assert name in REQUIRES, f"{name} is not allowlisted"
            assert K8S_VALUE.match(value) and len(value) <= 63, f"{name}={value!r} is not a label value"
            for requirement in REQUIRES[name]:
                assert _passed(record, node, requirement), f"seed {seed}: {node}: {name} without {requirement}"
        entitled = {name for name, reqs in REQUIRES.items() if all(_passed(record, node, r) for r in reqs)}
        node_record = next(n for n in record.nodes if n.name == node)
        expected = {
            "hilt.gate": "pass", "hilt.run": record.run_id, "hilt.profile": profiles[node],
            "hilt.image": node_record.image_id, "nvlink.c2c": "true",
        }
        if profile.trust is not None and profile.trust.secure_boot:  # what the passing check then proves
            expected["trust.secureboot"] = "true"
        if node_record.topology is not None:
            groups = topology_groups(node_record.topology)
            expected |= {"nvlink.fabric": groups.kind, "nvlink.groups": str(len(groups.groups))}
            if groups.group_size:
                expected["nvlink.group-size"] = str(groups.group_size)
        for name in entitled & set(expected):
            if K8S_VALUE.match(expected[name]) and len(expected[name]) <= 63:
                assert labels.get(name) == expected[name], f"seed {seed}: {node}: {name} missing or wrong"
        # break one check a label rests on: the label goes
        for name in labels:
            requirement = REQUIRES[name][-1]
            if requirement == GATE:
                broken = record.model_copy(update={"gate": VerdictRecord(outcome="regression", reason="r")})
            else:
                broken = record.model_copy(update={"tests": [*record.tests, Report(
                    nodeid=f"suites/{requirement[0]}.py::{requirement[1]}[{node}]", outcome="failed", node=node)]})
            assert name not in verified_labels(broken, node, profile), f"seed {seed}: {name} survived a failure"


def test_the_facts_name_their_checks_and_the_labels_read_as_published():
    p = load_profile("sim-islands")
    topology = _topology("found", "sim-islands")
    tests = [Report(nodeid=f"suites/{m}.py::{f}[gpu-01]", outcome="passed", node="gpu-01")
             for m, f in [("test_topology", "test_topology_matrix"), ("test_nvlink", "test_nvlink_links_active"),
                          ("test_trust", "test_secure_boot")]]
    record = RunRecord(run_id="20260301T020000-abc123", started_at="2026-03-01T02:00:00Z", rig="sim-islands",
                       nodes=[NodeRecord(name="gpu-01", image_id="hilt-sim-good", topology=topology)], tests=tests,
                       gate=VerdictRecord(outcome="pass", reason="r"), node_profiles={"gpu-01": "sim-islands"})
    assert verified_labels(record, "gpu-01", p) == {
        "hilt.gate": "pass", "hilt.run": "20260301T020000-abc123", "hilt.profile": "sim-islands",
        "hilt.image": "hilt-sim-good", "nvlink.fabric": "direct", "nvlink.groups": "2", "nvlink.group-size": "2",
        "trust.secureboot": "true"}
    facts = {f.name: [str(c) for c in f.checks] for f in verified_facts(record, "gpu-01", p)}
    assert facts["nvlink.groups"] == ["test_topology::test_topology_matrix", "test_nvlink::test_nvlink_links_active"]
    assert facts["hilt.gate"] == ["gate::pass"]
    # a profile that does not require Secure Boot: the check passing proves only that BMC and OS agree
    relaxed = p.model_copy(update={"trust": p.trust.model_copy(update={"secure_boot": False})})
    assert "trust.secureboot" not in verified_labels(record, "gpu-01", relaxed)


def test_kubernetes_label_syntax():
    assert key_problem("feature.node.kubernetes.io/nvlink.group-size") is None
    assert key_problem("nvidia.com/gpu.clique") is None
    assert "name" in key_problem("feature.node.kubernetes.io/-bad")
    assert "name" in key_problem("x/" + "a" * 64)
    assert "prefix" in key_problem("Feature.Node/x") and "prefix" in key_problem("/x")
    assert value_problem("") is None and value_problem("a.b-c_d") is None
    for bad in ("-a", "a-", "a b", "a/b", "x" * 64, "ü"):
        assert value_problem(bad), bad
    assert set(ALLOWLIST) == set(REQUIRES)
