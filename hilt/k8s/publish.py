"""Publish on the nodes: hilt's NFD feature file after a run, for rigs that opt in (``kubernetes:`` in rigs.yaml).

After a run whose gate passed, each node gets the labels of the facts that run verified on it
(:func:`hilt.k8s.labels.verified_labels`), valid for the rig's ``validity_s`` (NFD's ``# +expiry-time=``): a
node nobody re-verifies loses them by itself. A node the run failed on (a product failure or a regression on
it, or a lease-wide regression) has the file removed at once: a cluster must not keep scheduling on a claim
that the last run disproved. A run that decided nothing about a node (inconclusive, not a gate, an
infrastructure error) leaves its file as it was: the expiry bounds how long that lasts.

The file is written whole, as a dot-file, then renamed: NFD skips dot-files, so it never reads half of one.
One node's SSH problem costs only that node's hand-off; the run's verdict and exit code never change here.
"""

from __future__ import annotations

import base64
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from hilt.errors import HiltError
from hilt.k8s.features import render_feature_file
from hilt.k8s.labels import check_labels, verified_labels
from hilt.profiles.model import Profile, load_profile
from hilt.record.run_record import RunRecord
from hilt.rig.config import KubernetesPublish

log = logging.getLogger(__name__)

Action = Literal["write", "remove", "keep"]


@dataclass(frozen=True)
class HandOff:
    """What was done on one node, and why (for the run's output and the tests)."""

    node: str
    action: Action
    why: str
    labels: dict[str, str] | None = None
    error: str | None = None


def failed_nodes(record: RunRecord) -> set[str]:
    """The nodes this run failed on: a failed test on the node, a regressed metric on it, or a lease-wide
    regression (every node of the run)."""
    failed = {t.node for t in record.tests if t.outcome == "failed" and t.node}
    for metric in record.metrics:
        if metric.verdict is not None and metric.verdict.gated and metric.verdict.outcome == "regression":
            if metric.node:
                failed.add(metric.node)
            else:
                failed.update(n.name for n in record.nodes)
    return failed


def decide(record: RunRecord, node: str) -> tuple[Action, str]:
    """What the run says to do with the node's feature file."""
    if node in failed_nodes(record):
        return "remove", f"run {record.run_id} failed on {node}"
    if record.gate is not None and record.gate.outcome == "pass":
        return "write", f"run {record.run_id} passed its gate"
    outcome = record.gate.outcome if record.gate else "none"
    return "keep", f"run {record.run_id} decided nothing about {node} (gate {outcome}): its file stays as it was"


def feature_file_text(record: RunRecord, node: str, profile: Profile | None, settings: KubernetesPublish,
                      now: datetime) -> tuple[str, dict[str, str]]:
    """The node's feature file and its labels."""
    labels = verified_labels(record, node, profile)
    check_labels(labels)  # the allowlist, again where the file is written
    comment = (f"hilt: facts verified on {node} by run {record.run_id} (gate pass); removed when a run fails "
               f"on this node.\nWritten {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}; docs/kubernetes.md")
    return render_feature_file(labels, now + timedelta(seconds=settings.validity_s), comment), labels


def write_script(settings: KubernetesPublish, text: str) -> str:
    """Write the file as ``.<name>`` in the directory, then rename it over ``<name>`` (atomic for NFD)."""
    directory = shlex.quote(settings.features_dir)
    tmp = shlex.quote(f"{settings.features_dir}/.{settings.file}")
    final = shlex.quote(f"{settings.features_dir}/{settings.file}")
    data = base64.b64encode(text.encode()).decode()
    return (f"set -e\nmkdir -p {directory}\nprintf '%s' {shlex.quote(data)} | base64 -d > {tmp}\n"
            f"chmod 0644 {tmp}\nmv -f {tmp} {final}\n")


def remove_script(settings: KubernetesPublish) -> str:
    tmp = shlex.quote(f"{settings.features_dir}/.{settings.file}")
    final = shlex.quote(f"{settings.features_dir}/{settings.file}")
    return f"rm -f {final} {tmp}\n"


def hand_off_node(node: Any, record: RunRecord, settings: KubernetesPublish, profile: Profile | None,
                  now: datetime | None = None) -> HandOff:
    """Write, remove or keep hilt's feature file on one node (``node``: anything with ``run_script``)."""
    action, why = decide(record, node.name)
    labels = None
    try:
        if action == "write":
            text, labels = feature_file_text(record, node.name, profile, settings, now or datetime.now(UTC))
            node.run_script(write_script(settings, text), timeout=60)
        elif action == "remove":
            node.run_script(remove_script(settings), timeout=60)
    except HiltError as exc:
        return HandOff(node.name, action, why, labels, error=str(exc))
    return HandOff(node.name, action, why, labels)


def hand_off(record: RunRecord, settings: KubernetesPublish | None, node_configs: dict[str, Any],
             say: Callable[[str], None] | None = None) -> list[HandOff]:
    """Every node of the run (that the session could reach); nothing when the rig does not opt in."""
    if settings is None:
        return []
    from hilt.node.ssh import Node

    results = []
    for name in sorted(node_configs):
        node_record = next((n for n in record.nodes if n.name == name), None)
        if node_record is None or not node_record.booted:
            results.append(HandOff(name, "keep", f"{name} did not boot in run {record.run_id}: not reachable"))
        else:
            profile = _profile(record.node_profiles.get(name))
            try:
                with Node(name, node_configs[name]) as node:
                    results.append(hand_off_node(node, record, settings, profile))
            except HiltError as exc:  # the connection itself
                action, why = decide(record, name)
                results.append(HandOff(name, action, why, error=str(exc)))
        if say is not None:
            say(_line(results[-1], settings))
    return results


def _profile(name: str | None) -> Profile | None:
    try:
        return load_profile(name) if name else None
    except HiltError as exc:  # the labels that need the profile are left out; the others still go
        log.warning("profile %s not loaded for the labels: %s", name, exc)
        return None


def _line(result: HandOff, settings: KubernetesPublish) -> str:
    where = f"{settings.features_dir}/{settings.file}"
    if result.error:
        return f"k8s: {result.node}: {result.action} {where} FAILED: {result.error}"
    if result.action == "write":
        return f"k8s: {result.node}: published {len(result.labels or {})} labels to {where} ({result.why})"
    if result.action == "remove":
        return f"k8s: {result.node}: removed {where} ({result.why})"
    return f"k8s: {result.node}: {where} left as it was ({result.why})"
