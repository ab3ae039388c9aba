"""Verified facts -> node labels: what hilt may tell Kubernetes about a node after a run.

Only facts whose check passed on that node in that run become labels, from a fixed allowlist; a fact whose
check failed, errored, was skipped or did not run is absent, never "false": a scheduler that reads a label
reads a fact hilt proved, and a node hilt knows nothing about looks like a node hilt knows nothing about.
Every label comes with the checks it rests on (``Fact.checks``), so a person, and the property test, can
trace it back to the run's record. Names are unprefixed NFD feature names: NFD publishes them under
``feature.node.kubernetes.io/`` (hilt.k8s.features). Pure functions of the run record (and the node's
profile, for what its checks required).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hilt.errors import ConfigError
from hilt.fabric.nvgroups import NvlinkGroups, nvlink_groups
from hilt.profiles.model import Profile
from hilt.record.run_record import RunRecord, TestRecord, TopologyRecord

# ------------------------------------------------------------------ Kubernetes' label syntax

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_PREFIX = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label key (``[prefix/]name``), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return f"label key {key!r}: empty prefix before '/'"
    if slash and (len(prefix) > 253 or not _PREFIX.match(prefix)):
        return (f"label key {key!r}: prefix {prefix!r} is not a DNS subdomain (lower-case letters, digits, '-' "
                "and '.', at most 253 characters)")
    if not name or len(name) > 63 or not _NAME.match(name):
        return (f"label key {key!r}: name {name!r} must be 1 to 63 characters of letters, digits, '-', '_' and "
                "'.', starting and ending with a letter or digit")
    return None


def value_problem(value: str) -> str | None:
    """Why ``value`` is not a Kubernetes label value, or None."""
    if len(value) > 63 or not _VALUE.match(value):
        return (f"label value {value[:80]!r}: at most 63 characters of letters, digits, '-', '_' and '.', "
                "starting and ending with a letter or digit (or empty)")
    return None


# ------------------------------------------------------------------ the allowlist and what each label rests on


@dataclass(frozen=True)
class Check:
    """One check of a run: a suite module and its test function (the same on every node it ran on)."""

    module: str  # suite module stem, e.g. "test_topology"
    function: str

    def matches(self, test: TestRecord) -> bool:
        path, _, rest = test.nodeid.partition("::")
        stem = path.rsplit("/", 1)[-1].removesuffix(".py")
        return stem == self.module and rest.split("[", 1)[0] == self.function

    def __str__(self) -> str:
        return f"{self.module}::{self.function}"


GATE = Check("gate", "pass")  # the run's release gate: not a test, the verdict of the whole run
TOPOLOGY = Check("test_topology", "test_topology_matrix")
NVLINK = Check("test_nvlink", "test_nvlink_links_active")
SECURE_BOOT = Check("test_trust", "test_secure_boot")
C2C = Check("test_c2c", "test_c2c_links")
"""The NVLink-C2C links check (suite test_c2c, from the NVLink Fusion work; skipped where the profile has no c2c:)."""

#: Every label hilt may publish, and the checks each rests on (all must have passed on the node).
ALLOWLIST: dict[str, tuple[Check, ...]] = {
    "hilt.gate": (GATE,),
    "hilt.run": (GATE,),
    "hilt.profile": (GATE,),
    "hilt.image": (GATE,),
    "nvlink.fabric": (TOPOLOGY, NVLINK),
    "nvlink.groups": (TOPOLOGY, NVLINK),
    "nvlink.group-size": (TOPOLOGY, NVLINK),
    "nvlink.c2c": (C2C,),
    "trust.secureboot": (SECURE_BOOT,),
}


@dataclass(frozen=True)
class Fact:
    """A label and the checks of the run it rests on."""

    name: str
    value: str
    checks: tuple[Check, ...]


def check_passed(record: RunRecord, node: str, check: Check) -> bool:
    """The check ran on ``node`` in this run and every report of it passed (the gate: the run's verdict is pass)."""
    if check == GATE:
        return record.gate is not None and record.gate.outcome == "pass" and any(n.name == node for n in record.nodes)
    reports = [t for t in record.tests if t.node == node and check.matches(t)]
    return bool(reports) and all(t.outcome == "passed" for t in reports)


def topology_groups(topology: TopologyRecord) -> NvlinkGroups:
    """The NVLink groups of the matrix a node showed (its ``found`` cells)."""
    index = {d: i for i, d in enumerate(topology.devices)}
    gpus = sorted(int(d[3:]) for d in topology.devices if re.fullmatch(r"GPU\d+", d))
    return nvlink_groups(gpus, lambda a, b: topology.found[index[f"GPU{a}"]][index[f"GPU{b}"]])


def _candidates(record: RunRecord, node: str, profile: Profile | None) -> dict[str, str]:
    """Each allowlisted fact's value as the record states it (before asking whether its checks passed)."""
    values: dict[str, str] = {"hilt.gate": "pass", "hilt.run": record.run_id}
    node_record = next((n for n in record.nodes if n.name == node), None)
    profile_name = record.node_profiles.get(node) or (profile.name if profile else None)
    if profile_name:
        values["hilt.profile"] = profile_name
    if node_record is not None and node_record.image_id:
        values["hilt.image"] = node_record.image_id
    if node_record is not None and node_record.topology is not None:
        groups = topology_groups(node_record.topology)
        values["nvlink.fabric"] = groups.kind
        values["nvlink.groups"] = str(len(groups.groups))
        if groups.group_size is not None:
            values["nvlink.group-size"] = str(groups.group_size)
    values["nvlink.c2c"] = "true"
    if profile is not None and profile.trust is not None and profile.trust.secure_boot:
        values["trust.secureboot"] = "true"  # the check passing proves "enabled" only where the profile requires it
    return values


def verified_facts(record: RunRecord, node: str, profile: Profile | None = None) -> list[Fact]:
    """The node's facts this run verified: allowlisted, every check they rest on passed, valid label syntax."""
    facts = []
    for name, value in _candidates(record, node, profile).items():
        checks = ALLOWLIST[name]
        if all(check_passed(record, node, c) for c in checks) and value_problem(value) is None:
            facts.append(Fact(name, value, checks))
    return facts


def verified_labels(record: RunRecord, node: str, profile: Profile | None = None) -> dict[str, str]:
    """``{name: value}`` of :func:`verified_facts`, in allowlist order."""
    return {f.name: f.value for f in verified_facts(record, node, profile)}


def check_labels(labels: dict[str, str]) -> None:
    """Refuse (ConfigError) a label outside the allowlist or one that Kubernetes would refuse."""
    for name, value in labels.items():
        if name not in ALLOWLIST:
            raise ConfigError(f"label {name!r} is not one hilt publishes (allowlist: {', '.join(ALLOWLIST)})")
        problem = key_problem(name) or value_problem(value)
        if problem:
            raise ConfigError(problem)
