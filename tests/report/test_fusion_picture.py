"""The fabric picture's coherent part (issue 26 item 6): C2C links, each GPU's place in the NVLink domain and IMEX's
matrix per node, from the records the suites attach as test properties, built from real captures."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from hilt.fabric.c2c import parse_c2c_status
from hilt.fabric.gpuquery import parse_nvidia_smi_q
from hilt.fabric.imex import parse_imex_status
from hilt.pytestplugin.collector import RunCollector
from hilt.pytestplugin.fusion import C2C_PROPERTY, DOMAIN_PROPERTY, IMEX_PROPERTY
from hilt.record.run_record import (
    C2cRecord,
    DomainRecord,
    FabricGpuRecord,
    ImexNodeRecord,
    ImexRecord,
    NodeRecord,
    RunRecord,
)
from hilt.report.fabric import fabric_section
from hilt.report.html import build_report
from hilt.report.svg import c2c_diagram
from tests.support.browser import chromium, html_attr, needs_chromium
from tests.support.nights import make_night

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "c2c_mnnvl"  # provenance: ../PROVENANCE.md
C2C = (CORPUS / "DOUBTFUL-graphics-device-4gpu-nvidia-smi-c2c-s-5links-incrementing-values-fixture.txt").read_text()
QX = (CORPUS / "gb300-4gpu-nvidia-smi-q-x-xml-fabric-clique32766-ids-scrubbed.xml").read_text()
IMEX = (CORPUS / "gb200-nvl72-p6e-18node-nvidia-imex-ctl-N-all-READY-version-col-domain-UP.txt").read_text()


def _c2c(text: str = C2C, problems: tuple[str, ...] = ()) -> C2cRecord:
    gpus = parse_c2c_status(text)
    return C2cRecord(profile="gb300-nvl-tray-4gpu", links={i: dict(g.links) for i, g in gpus.items()},
                     names={i: g.name for i, g in gpus.items()}, links_per_gpu=5, min_link_gbps=44.0,
                     problems=list(problems))


def _domain(xml: str = QX) -> DomainRecord:
    gpus = [FabricGpuRecord(gpu=i, pci_bus_id=q.pci_bus_id, state=q.fabric.state, status=q.fabric.status,
                            clique_id=q.fabric.clique_id, cluster_uuid=q.fabric.cluster_uuid, health=q.fabric.health)
            for i, q in enumerate(parse_nvidia_smi_q(xml))]
    return DomainRecord(profile="gb300-nvl-tray-4gpu", gpus=gpus)


def _imex(text: str = IMEX) -> ImexRecord:
    view = parse_imex_status(text)
    return ImexRecord(domain_state=view.domain_state,
                      nodes=[ImexNodeRecord(index=n.index, address=n.address, status=n.status, version=n.version)
                             for n in view.nodes],
                      connections={f"{a}-{b}": c for (a, b), c in view.connections.items()})


def _run(**nodes: NodeRecord) -> RunRecord:
    return RunRecord(run_id="r7", started_at="2026-11-30T00:00:00Z", rig="nvl72", nodes=list(nodes.values()))


def test_records_round_trip_and_older_records_have_none():
    node = NodeRecord(name="tray1", c2c=_c2c(), domain=_domain().model_copy(update={"imex": _imex()}))
    again = NodeRecord.model_validate_json(node.model_dump_json())
    assert again == node and again.c2c.links[3][4] == 44.731 and again.domain.imex.connections["17-10"] == "C"
    assert NodeRecord.model_validate({"name": "tray1"}).c2c is None


def test_collector_puts_c2c_domain_and_imex_on_their_nodes():
    class _Config:
        def getoption(self, name, default=None):  # noqa: ANN001, ANN201
            return default

    collector = RunCollector(_Config())
    collector.record = _run(a=NodeRecord(name="tray1"), b=NodeRecord(name="tray2"))

    def report(nodeid: str, props: list) -> pytest.TestReport:
        return pytest.TestReport(nodeid=nodeid, location=("x", 0, "x"), keywords={}, outcome="passed",
                                 longrepr=None, when="call", user_properties=props)

    imex = {"tray1": _imex().model_dump(), "tray2": _imex().model_dump(), "not-in-run": _imex().model_dump()}
    collector.add_report(report("suites/test_nvlink_domain.py::test_imex_domain", [(IMEX_PROPERTY, json.dumps(imex))]))
    collector.add_report(report("suites/test_c2c.py::test_c2c_links[tray2]",
                                [("hilt.node", "tray2"), (C2C_PROPERTY, _c2c().model_dump_json())]))
    collector.add_report(report("suites/test_nvlink_domain.py::test_fabric_state[tray2]",
                                [("hilt.node", "tray2"), (DOMAIN_PROPERTY, _domain().model_dump_json())]))
    collector.add_report(report("suites/test_c2c.py::test_c2c_links[tray1]",
                                [("hilt.node", "tray1"), (C2C_PROPERTY, "{not a record")]))
    tray1, tray2 = collector.record.nodes
    assert tray1.c2c is None and tray1.domain.imex == _imex() and tray1.domain.gpus == []
    assert tray2.c2c == _c2c() and tray2.domain.gpus == _domain().gpus
    assert tray2.domain.imex == _imex()  # the per-node record, arriving later, keeps the lease-wide view


def test_a_link_down_is_drawn_and_said_in_words():
    down = C2C.replace("C2C Link 3: 44.725 GB/s", "C2C Link 3: <inactive>")
    record = _c2c(down, ("GPU2 C2C link 3: inactive, expected active",))
    html = fabric_section([_run(t=NodeRecord(name="tray1", c2c=record))])
    assert '<td class="diff" title="GPU2 C2C link 3: inactive">down</td>' in html
    assert re.findall(r'<g class="c2c-gpu( c2c-bad)?" data-gpu="(\d)"><title>([^<]*)</title>', html) == [
        ("", "0", "GPU0: 5/5 links, 223.6 GB/s"), ("", "1", "GPU1: 5/5 links, 223.6 GB/s"),
        (" c2c-bad", "2", "GPU2: 4/5 links, 178.9 GB/s (link 3 down)"), ("", "3", "GPU3: 5/5 links, 223.6 GB/s")]
    assert "<li>GPU2 C2C link 3: inactive, expected active</li>" in html and 'data-diffs="1"' in html


def test_a_slow_link_and_a_host_without_c2c():
    slow = c2c_diagram({0: {0: 22.3, 1: 44.7}}, 2, 44.0, "n")
    assert "GPU0: 2/2 links, 67.0 GB/s (link 0 under 44 GB/s)" in slow and "c2c-bad" in slow
    assert 'data-gpus="0"' in c2c_diagram({}, 5, 44.0, "h200") and "No Devices support C2C." in c2c_diagram({})


def test_domain_split_and_imex_fault_are_shown_per_node():
    other = QX.replace("<cliqueId>32766</cliqueId>", "<cliqueId>32767</cliqueId>")
    imex_down = _imex(IMEX.replace("172.31.49.228   - READY    ", "172.31.49.228   - UNAVAILABLE")
                      .replace("Domain State: UP", "Domain State: DEGRADED"))
    run = _run(a=NodeRecord(name="tray1", domain=_domain().model_copy(update={"imex": imex_down})),
               b=NodeRecord(name="tray2", domain=_domain()),
               c=NodeRecord(name="tray3", domain=_domain(other)))
    html = fabric_section([run])
    assert 'data-domains="2"' in html and "2 NVLink domains where one was expected" in html
    assert re.search(r"<tr><td>32766</td><td><code>00000001-0000-0000-0000-000000000001</code></td>"
                     r"<td>tray1, tray2</td></tr>", html)
    assert ("<li>tray3: clique 32767, ClusterUUID 00000001-0000-0000-0000-000000000001; the lease&#x27;s other nodes "
            "are in clique 32766, ClusterUUID 00000001-0000-0000-0000-000000000001</li>") in html
    assert "<li>IMEX node #3 (172.31.49.228) is UNAVAILABLE, expected READY</li>" in html
    assert 'data-domain-state="DEGRADED"' in html
    assert "<summary>1 node match their profile: tray2</summary>" in html  # the one that matches is folded
    order = re.findall(r'<div class="fabric-coherent" data-node="([^"]*)" data-diffs="(\d+)"', html)
    assert order == [("tray1", "2"), ("tray3", "1"), ("tray2", "0")]


def test_untrusted_text_is_escaped():
    record = _domain().model_copy(update={"imex": ImexRecord(domain_state="<b>UP", nodes=[
        ImexNodeRecord(index=0, address="<script>x</script>", status="READY")], connections={"0-0": "<i>"})})
    html = fabric_section([_run(a=NodeRecord(name="<img src=x>", domain=record))])
    assert "<script>" not in html and "<img src" not in html and "<b>UP" not in html and "<i>" not in html


@needs_chromium
def test_report_draws_the_coherent_fabric_in_chromium(tmp_path: Path) -> None:
    runs = [make_night(i, random.Random(i), regress_at=None) for i in (1, 2)]
    down = C2C.replace("C2C Link 3: 44.725 GB/s", "C2C Link 3: <inactive>")
    runs[-1].nodes[0].c2c = _c2c(down, ("GPU2 C2C link 3: inactive, expected active",))
    runs[-1].nodes[0].domain = _domain().model_copy(update={"imex": _imex()})
    page = build_report(runs, tmp_path / "report.html")
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert html_attr(dom, "data-ready") == "1" and html_attr(dom, "data-errors") == "[]"
    assert len(re.findall(r'<svg class="c2c-diagram"', dom)) == 1 and dom.count("I ≠ C") == 0
    assert "GPU2 C2C link 3: inactive, expected active" in dom
