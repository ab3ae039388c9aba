"""Publishing on a node (a real OpenSSH server on loopback): a passed gate writes the feature file NFD reads, with
an expiry; a run that failed on the node removes it; a run that decided nothing leaves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hilt.k8s.features import read_feature_file
from hilt.k8s.publish import decide, hand_off, hand_off_node, write_script
from hilt.profiles.model import load_profile
from hilt.record.run_record import MetricRecord, NodeRecord, RunRecord, VerdictRecord
from hilt.record.run_record import TestRecord as Report
from hilt.rig.config import KubernetesPublish

NOW = datetime(2026, 3, 1, 2, 0, 0, tzinfo=UTC)


def _record(gate: str, outcome: str = "passed", node: str = "gpu-07") -> RunRecord:
    return RunRecord(run_id="20260301T020000-abc123", started_at="2026-03-01T02:00:00Z", rig="sim",
                     nodes=[NodeRecord(name=node, image_id="hilt-sim-good")],
                     tests=[Report(nodeid=f"suites/test_trust.py::test_secure_boot[{node}]", outcome=outcome,
                                   node=node)],
                     gate=VerdictRecord(outcome=gate, reason="r"), node_profiles={node: "sim-4gpu"})


def test_pass_writes_fail_removes_undecided_keeps(ssh_node, tmp_path):
    settings = KubernetesPublish(features_dir=str(tmp_path / "nfd" / "features.d"), validity_s=3600)
    profile = load_profile("sim-4gpu")
    done = hand_off_node(ssh_node, _record("pass"), settings, profile, now=NOW)
    assert (done.action, done.error) == ("write", None)
    path = tmp_path / "nfd" / "features.d" / "hilt"
    assert sorted(p.name for p in path.parent.iterdir()) == ["hilt"]  # the dot-file was renamed, not left
    read = read_feature_file("hilt", path.read_bytes(), NOW)
    assert read.labels == {"feature.node.kubernetes.io/hilt.gate": "pass",
                           "feature.node.kubernetes.io/hilt.run": "20260301T020000-abc123",
                           "feature.node.kubernetes.io/hilt.profile": "sim-4gpu",
                           "feature.node.kubernetes.io/hilt.image": "hilt-sim-good",
                           "feature.node.kubernetes.io/trust.secureboot": "true"} == {
        f"feature.node.kubernetes.io/{k}": v for k, v in (done.labels or {}).items()}
    assert read.expires == NOW + timedelta(seconds=3600)
    assert read_feature_file("hilt", path.read_bytes(), NOW + timedelta(seconds=3601)).labels == {}

    kept = hand_off_node(ssh_node, _record("inconclusive"), settings, profile, now=NOW)
    assert kept.action == "keep" and path.exists()
    removed = hand_off_node(ssh_node, _record("regression", outcome="failed"), settings, profile, now=NOW)
    assert (removed.action, removed.error) == ("remove", None) and not path.exists()


def test_a_run_that_failed_on_the_node_removes_even_without_a_gate_and_a_lease_regression_removes_all():
    assert decide(_record("not_run", outcome="failed"), "gpu-07")[0] == "remove"
    assert decide(_record("not_run"), "gpu-07")[0] == "keep"
    lease_wide = _record("regression").model_copy(update={"metrics": [MetricRecord(
        name="nccl.busbw", unit="GB/s", samples=[1.0], verdict=VerdictRecord(outcome="regression", reason="r"))]})
    assert decide(lease_wide, "gpu-07") == ("remove", "run 20260301T020000-abc123 failed on gpu-07")


def test_write_is_a_dot_file_renamed_and_errors_stay_on_the_node(ssh_node, tmp_path):
    settings = KubernetesPublish(features_dir=str(tmp_path / "f.d"), file="hilt")
    script = write_script(settings, "a=1\n")
    assert script.index(f"> {tmp_path}/f.d/.hilt\n") < script.index(f"mv -f {tmp_path}/f.d/.hilt {tmp_path}/f.d/hilt")
    (tmp_path / "blocker").write_text("a file, not a directory")
    blocked = KubernetesPublish(features_dir=str(tmp_path / "blocker" / "features.d"))
    done = hand_off_node(ssh_node, _record("pass"), blocked, None, now=NOW)
    assert done.action == "write" and "gpu-07" in (done.error or "")


def test_rigs_that_do_not_opt_in_get_nothing_and_unbooted_nodes_are_said(ssh_node):
    assert hand_off(_record("pass"), None, {"gpu-07": ssh_node.config}) == []
    down = _record("pass").model_copy(update={"nodes": [NodeRecord(name="gpu-07", booted=False)]})
    said = []
    (result,) = hand_off(down, KubernetesPublish(), {"gpu-07": ssh_node.config}, say=said.append)
    assert result.action == "keep" and said == [
        "k8s: gpu-07: /etc/kubernetes/node-feature-discovery/features.d/hilt left as it was "
        "(gpu-07 did not boot in run 20260301T020000-abc123: not reachable)"]
