"""The fabric picture: per node, `nvidia-smi topo -m` as found (real captures) against the profile's matrix."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from hilt.fabric.topo import parse_topology
from hilt.profiles.model import load_profile
from hilt.pytestplugin.collector import RunCollector
from hilt.pytestplugin.topology import TOPOLOGY_PROPERTY
from hilt.record.run_record import NodeRecord, RunRecord, TopologyRecord
from hilt.report.fabric import LinkDiff, fabric_grid, fabric_section, link_diffs, problems
from hilt.report.html import build_report
from tests.support.browser import chromium, html_attr, needs_chromium
from tests.support.nights import make_night
from tests.support.topology import H100, TOPO, degraded_h100, topology_record


def test_h100_capture_matches_its_profile_and_round_trips() -> None:
    topo = topology_record("hgx-h100-8gpu", H100)
    assert topo.devices == [f"GPU{i}" for i in range(8)] + [f"NIC{i}" for i in range(8)]
    assert topo.nic_names["NIC3"] == "mlx5_3"
    assert problems(topo) == []
    assert topo.found[3][5] == "NV18" and topo.found[3][11] == "PIX"  # GPU3-NIC3, as printed
    assert topo.expected[3][5] == "NV18" and topo.expected[3][11] is None  # the profile places no NIC
    node = NodeRecord(name="node1", topology=topo)
    assert NodeRecord.model_validate_json(node.model_dump_json()).topology == topo
    old = NodeRecord.model_validate({"name": "node1", "driver": "550.54.15"})  # a record from before
    assert old.topology is None


def test_degraded_link_is_marked_and_explained() -> None:
    topo = topology_record("hgx-h100-8gpu", degraded_h100())
    assert link_diffs(topo) == [LinkDiff("GPU3", "GPU5", "NV18", "NV12")]
    html = fabric_grid("node3", topo, "staging-a")
    cells = re.findall(r'<td class="link diff" data-a="([^"]*)" data-b="([^"]*)" title="([^"]*)">([^<]*)</td>', html)
    assert cells == [("GPU3", "GPU5", "GPU3–GPU5: expected NV18, found NV12", "NV12 ≠ NV18"),
                     ("GPU5", "GPU3", "GPU5–GPU3: expected NV18, found NV12", "NV12 ≠ NV18")]
    assert 'data-diffs="1"' in html
    assert "<li>GPU3–GPU5: expected NV18, found NV12</li>" in html  # in words, not by colour only


def test_wrong_board_and_missing_gpus_from_real_captures() -> None:
    # a DGX-1 (hybrid cube mesh) whose rigs.yaml says dgx1: matches, NIC locality included
    dgx1 = topology_record("dgx1-v100-8gpu", (TOPO / "dgx1-v100-8gpu-hybrid-cube-mesh-nv1-nv2-mlx5.txt").read_text())
    assert problems(dgx1) == [] and dgx1.expected[2][8] == "PIX"  # GPU2-mlx5_0
    # a 4-GPU GH200 node under the 8-GPU HGX H100 profile: four GPUs missing, every link NV6 not NV18
    gh200 = topology_record("hgx-h100-8gpu", (TOPO / "gh200-4gpu-nv6-multi-numa-affinity-gpu-numa-id.txt").read_text())
    found = problems(gh200)
    assert found[:4] == [f"GPU{i}: the profile expects it; not in the output" for i in range(4, 8)]
    assert found[4:] == [f"GPU{a}–GPU{b}: expected NV18, found NV6" for a in range(4) for b in range(a + 1, 4)]
    html = fabric_grid("gh", gh200)
    assert html.count('class="link missing"') == 8 * 4 * 2 - 4 * 4  # rows and columns of the missing GPUs
    # the H100 under the DGX-1 profile: its NIC locality names mlx5_0, found through the NIC legend (NIC0)
    h100_as_dgx1 = topology_record("dgx1-v100-8gpu", H100)
    assert "GPU2–NIC0: expected PIX, found NODE" in problems(h100_as_dgx1)


def test_hostile_names_are_escaped() -> None:
    topo = topology_record("hgx-h100-8gpu", degraded_h100())
    topo.nic_names["NIC0"] = "<script>alert(1)</script>"
    topo.notes.append('"><img src=x onerror=alert(2)>')
    html = fabric_grid('<b>node</b>', topo, "rig<i>")
    assert "<script>" not in html and "<img" not in html and "<b>node" not in html and "rig<i>" not in html


def test_collector_puts_the_recorded_matrix_on_its_node() -> None:
    class _Config:
        def getoption(self, name, default=None):  # noqa: ANN001, ANN201
            return default

    topo = topology_record("hgx-h100-8gpu", degraded_h100())
    collector = RunCollector(_Config())
    collector.record = RunRecord(run_id="r", started_at="2026-11-30T00:00:00Z", rig="x",
                                 nodes=[NodeRecord(name="node1"), NodeRecord(name="node2")])
    collector.add_report(pytest.TestReport(
        nodeid="suites/test_topology.py::test_topology_matrix[node2]", location=("x", 0, "x"), keywords={},
        outcome="failed", longrepr="topology differs", when="call",
        user_properties=[("hilt.node", "node2"), (TOPOLOGY_PROPERTY, topo.model_dump_json())]))
    assert collector.record.nodes[0].topology is None
    assert collector.record.nodes[1].topology == topo


def _four_node_nights() -> list[RunRecord]:
    good = topology_record("hgx-h100-8gpu", H100)
    bad = topology_record("hgx-h100-8gpu", degraded_h100())
    rng = random.Random(3)
    runs = [make_night(i, rng, regress_at=None) for i in (1, 2)]
    for run in runs:
        run.nodes = [NodeRecord(name=f"node{n}", topology=good) for n in range(1, 5)]
    runs[-1].nodes[2].topology = bad  # node3, last night
    return runs


def test_section_shows_the_latest_run_with_the_differing_node_first() -> None:
    html = fabric_section(_four_node_nights())
    order = re.findall(r'<div class="fabric-node" data-node="([^"]*)" data-rig="sim" data-diffs="(\d+)"', html)
    assert order == [("node3", "1"), ("node1", "0"), ("node2", "0"), ("node4", "0")]
    assert '<summary>3 nodes match their profile: node1, node2, node4</summary>' in html  # folded
    assert fabric_section([]) == fabric_section(_four_node_nights()[:0]) == ""  # no topology: no section


@needs_chromium
def test_report_draws_the_fabric_in_chromium(tmp_path: Path) -> None:
    page = build_report(_four_node_nights(), tmp_path / "report.html")
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert html_attr(dom, "data-ready") == "1" and html_attr(dom, "data-errors") == "[]"
    assert len(re.findall(r'<table class="fabric">', dom)) == 4
    assert dom.count('class="link diff"') == 2
    assert "GPU3–GPU5: expected NV18, found NV12" in dom
    shot = tmp_path / "fabric.png"
    chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,1600")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("capture", sorted(p.name for p in TOPO.glob("*.txt")))
def test_the_picture_agrees_with_the_topology_check_for_every_capture_and_profile(capture: str) -> None:
    """What the grid marks is what test_topology fails on (hilt.fabric.compare), for every real capture read
    under every shipped profile: same links, same expected and found values."""
    from hilt.fabric.compare import compare_topology
    from hilt.profiles.model import known_profiles

    topo = parse_topology((TOPO / capture).read_text())
    for name in known_profiles():
        profile = load_profile(name)
        record = TopologyRecord.from_parsed(profile, topo)
        check = [d.replace("-", "–", 1) for d in compare_topology(profile, topo) if not d.startswith("GPU count")]
        drawn = [p for p in problems(record) if not p.endswith(("not in the output", " GPUs"))]
        # GPU pairs: the same sentences; GPU-NIC: the check names the NIC as the profile does (mlx5_0), the
        # grid by its column (NIC0), so those agree in number and in expected/found values
        assert sorted(d for d in drawn if _gpu_pair(d)) == sorted(d for d in check if _gpu_pair(d)), (capture, name)
        assert sorted(_values(d) for d in drawn if not _gpu_pair(d)) == sorted(
            _values(d) for d in check if not _gpu_pair(d)), (capture, name)
        missing = [p for p in problems(record) if p.endswith("not in the output")]
        assert len(missing) == max(0, profile.gpu_count - len(topo.gpus)), (capture, name)
        extra = [p for p in problems(record) if p.endswith(f"the profile expects {profile.gpu_count} GPUs")]
        assert len(extra) == max(0, len(topo.gpus) - profile.gpu_count), (capture, name)


def _gpu_pair(sentence: str) -> bool:
    return re.match(r"GPU\d+–GPU\d+:", sentence) is not None


def _values(sentence: str) -> tuple[str, str]:
    return sentence.split(": ", 1)[1], sentence.split("–", 1)[0]


def test_a_summary_with_a_malformed_matrix_names_the_field(tmp_path: Path) -> None:
    from hilt.history.base import HistoryError
    from hilt.history.summary import load_summary

    topo = topology_record("hgx-h100-8gpu", H100).model_dump()
    topo["found"][3] = topo["found"][3][:-1]
    run = RunRecord(run_id="r", started_at="2026-11-30T00:00:00Z", rig="x").model_dump()
    run["nodes"] = [{"name": "node1", "topology": topo}]
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(run))
    with pytest.raises(HistoryError, match=r"summary.json: field nodes.0.topology: found: row 3 has 15 cells; "
                                           r"a 16 x 16 matrix over devices is valid"):
        load_summary(path)
