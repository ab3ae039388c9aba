"""DCGM diag / health and nvbandwidth through the Node interface (LocalNode: subprocess instead of SSH) with
the sim image's real dcgmi and nvbandwidth programs on PATH, plus the pure judgements on corpus captures."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.errors import ConfigError, ParseError
from hilt.fabric.dcgm import parse_dcgm_diag, parse_dcgm_health
from hilt.node.local import LocalNode
from hilt.probes.dcgm_probe import (
    DcgmHealthWatch,
    DcgmIncomplete,
    judge_dcgm,
    nvbandwidth_metrics,
    run_dcgm_diag,
    run_nvbandwidth,
)
from hilt.probes.errors import ProbeFailed, ProbeSkipped
from hilt.probes.nvbandwidth import parse_nvbandwidth
from hilt.profiles.model import DcgmSpec, load_profile
from hilt.sim.dcgm_view import write_dcgmi, write_nvbandwidth
from tests.support.captures import v02_with_waived

# probe runs on this host leave run directories under /tmp and tagged processes, which these tests look for:
# under `make test-fast` (-n, --dist loadgroup) the modules that run probes here share one worker
pytestmark = pytest.mark.xdist_group("local-probes")

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
D2D = "device_to_device_memcpy_read_ce"


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """Install the sim image's dcgmi/nvbandwidth (4 GPUs) with the given specs on PATH."""
    monkeypatch.setenv("PATH", f"{tmp_path / 'usr/local/bin'}:/usr/bin:/bin")

    def install(dcgm: dict | None = None, nvb: dict | None = None) -> LocalNode:
        if dcgm is not None:
            write_dcgmi(tmp_path, dcgm, 4, "NVIDIA H100 80GB HBM3", "550.54.15")
        if nvb is not None:
            write_nvbandwidth(tmp_path, nvb, 4, "NVIDIA H100 80GB HBM3", "550.54.15")
        return LocalNode("n1")

    return install


def test_diag_levels_name_dcgm4_tests(tools):
    node = tools(dcgm={"version": "4.4.2"})
    assert [t.name for t in run_dcgm_diag(node, 1).tests] == ["software"]
    diag = run_dcgm_diag(node, 3)
    assert [t.name for t in diag.tests] == ["software", "memory", "diagnostic", "pcie", "targeted_stress",
                                            "targeted_power", "memory_bandwidth"]
    assert diag.passed and diag.version == "4.4.2" and diag.test("pcie").gpus == {g: "pass" for g in range(4)}


def test_memory_failure_is_named_with_gpu_and_message(tools):
    node = tools(dcgm={"fail": {"memory": {1: "GPU 1 had a DBE"}}})
    problems = judge_dcgm(run_dcgm_diag(node, 2), DcgmSpec(level=2))
    assert problems == ["DCGM test 'memory' (Hardware): fail on GPU 1: GPU 1 had a DBE"]


def test_text_box_of_the_sim_parses_like_its_json(tools, tmp_path):
    node = tools(dcgm={"warn": {"pcie": [2]}, "skip": ["memory"]})
    text = node.run(["dcgmi", "diag", "-r", "2"]).stdout
    as_json = node.run(["dcgmi", "diag", "-r", "2", "-j"]).stdout
    a, b = parse_dcgm_diag(text), parse_dcgm_diag(as_json)
    assert [(t.name, t.category, t.result, t.gpus, t.messages) for t in a.tests] == \
           [(t.name, t.category, t.result, t.gpus, t.messages) for t in b.tests]
    assert b.test("pcie").result == "warn" and b.test("memory").result == "skip"


def test_warn_and_skip_fail_unless_allowed(tools):
    diag = run_dcgm_diag(tools(dcgm={"warn": {"pcie": [2]}, "skip": ["memory"]}), 2)
    problems = judge_dcgm(diag, DcgmSpec(level=2))
    assert len(problems) == 2
    assert problems[0] == "DCGM test 'memory' (Hardware): skip on GPU 0, 1, 2, 3 (not in the profile's dcgm.allow_skip)"
    assert "'pcie' (Integration): warn on GPU 2 (not in the profile's dcgm.allow_warn)" in problems[1]
    assert judge_dcgm(diag, DcgmSpec(level=2, allow_warn=["PCIe"], allow_skip=["memory"])) == []


def test_incomplete_diagnostic_is_an_infrastructure_error(tools):
    with pytest.raises(DcgmIncomplete, match="could not complete.*Unable to complete diagnostic"):
        run_dcgm_diag(tools(dcgm={"incomplete": True}), 1)


def test_node_without_dcgm_skips_with_the_reason(tools):
    with pytest.raises(ProbeSkipped, match="dcgmi is not installed"):
        run_dcgm_diag(tools(), 1)


def test_corpus_h200_level3_passes_with_eud_skip_allowed_only():
    diag = parse_dcgm_diag((CORPUS / "dcgm_diag/dcgm3.3.9-h200x8-r3-pass-eud-skip-from-code-comment.txt").read_text())
    assert judge_dcgm(diag, load_profile("hgx-h200-8gpu").dcgm) == []
    assert judge_dcgm(diag, DcgmSpec(level=3)) == [
        "DCGM test 'EUD Test' (Stress): skip (not in the profile's dcgm.allow_skip)"]


def test_health_watch_reports_only_new_incidents(tools, tmp_path):
    node = tools(dcgm={"health": [[0, "PCIe system: Warning - Detected more than 8 PCIe replays per minute"]]})
    with DcgmHealthWatch([node]) as watch:
        # during the probe a second incident appears (the image's dcgmi now reports it)
        write_dcgmi(tmp_path, {"health": [[0, "PCIe system: Warning - Detected more than 8 PCIe replays per minute"],
                                          [3, "NVLink system: Failure - CRC errors on link 2"]]},
                    4, None, "550.54.15")
    assert watch.new_incidents() == ["n1: GPU 3: NVLink system: Failure - CRC errors on link 2"]


def test_health_watch_is_inert_without_dcgm(tools):
    with DcgmHealthWatch([tools()]) as watch:
        pass
    assert watch.new_incidents() == []


def test_health_report_parser():
    healthy = parse_dcgm_health("+---+---+\n| Health Monitor Report |\n+===+===+\n| Overall Health | Healthy |\n"
                                "+---+---+\n")
    assert healthy.healthy and healthy.incidents == []
    with pytest.raises(ParseError):
        parse_dcgm_health((CORPUS / "dcgmi_discovery/dcgm3.1.8-h800x8-discovery-l-zero-nvswitches.txt").read_text())


def test_nvbandwidth_metrics_sum_and_pairs(tools):
    node = tools(nvb={"d2d_gbps": 150.0, "noise": 0.0})
    result = run_nvbandwidth(node, [D2D, "host_to_device_memcpy_ce"])
    metrics = nvbandwidth_metrics(result, [D2D, "host_to_device_memcpy_ce"], "n1")
    total = next(m for m in metrics if m.name == f"nvbandwidth.{D2D}" and m.label_dict["pair"] == "sum")
    assert total.samples == (1800.0,) and total.unit == "GB/s"
    assert total.label_dict == {"pair": "sum", "gpus": "4", "node": "n1", "tool": "nvbandwidth"}
    pairs = [m for m in metrics if m.name == f"nvbandwidth.{D2D}" and m.label_dict["pair"] != "sum"]
    assert len(pairs) == 12 and {m.samples for m in pairs} == {(150.0,)}
    assert "0-0" not in {m.label_dict["pair"] for m in pairs}


def test_nvbandwidth_unknown_testcase_fails_naming_it(tools):
    with pytest.raises(ProbeFailed, match="no_such_testcase"):
        run_nvbandwidth(tools(nvb={"d2d_gbps": 150.0}), ["no_such_testcase"])


def test_nvbandwidth_absent_skips(tools):
    with pytest.raises(ProbeSkipped, match="nvbandwidth is not installed"):
        run_nvbandwidth(tools(), [D2D])


def test_v010_bidirectional_metric_reads_the_total_matrix():
    text = (CORPUS / "nvbandwidth/b300x7-v0.10.0-ce-testcases-read1-read2-total-coefficient-of-variation-partial.txt")
    name = "device_to_device_bidirectional_memcpy_read_ce"
    metrics = nvbandwidth_metrics(parse_nvbandwidth(text.read_text()), [name], "b300")
    total = next(m for m in metrics if m.label_dict["pair"] == "sum")
    assert total.samples == (63869.90,) and total.label_dict["gpus"] == "7" and len(metrics) == 43


@pytest.mark.parametrize("section, message", [
    ("dcgm: {level: 5}", "dcgm.level"),
    ("dcgm: {level: 2, allow_wran: [pcie]}", "dcgm.allow_wran: unknown field"),
    ("nvbandwidth: {testcases: ['d2d read']}", "is not an nvbandwidth testcase name"),
])
def test_profile_sections_are_strict(tmp_path, section, message):
    base = (Path(load_profile.__code__.co_filename).parent.parent / "profiles" / "sim-4gpu.yaml").read_text()
    base = base.split("# DCGM diagnostics")[0]
    path = tmp_path / "p.yaml"
    path.write_text(base + section + "\n")
    with pytest.raises(ConfigError, match=message):
        load_profile(path)


def test_every_probe_watch_reports_new_dcgm_health_incidents(tools, tmp_path):
    from hilt.probes.suite_support import NvlinkWatch

    node = tools(dcgm={})
    with NvlinkWatch([node]) as watch:
        write_dcgmi(tmp_path, {"health": [[1, "Memory system: Failure - a DBE was detected"]]}, 4, None, "550")
    assert watch.new_errors() == ["DCGM health: n1: GPU 1: Memory system: Failure - a DBE was detected"]


def test_v02_waived_testcase_is_reported_as_waived_through_the_node(tmp_path, monkeypatch):
    """Issue 24 item 10: nvbandwidth v0.2 prints `Waiving <testcase>.`; the probe said "printed no results: not
    nvbandwidth output" instead of naming the waived testcase. The node's nvbandwidth prints the v0.2 run."""

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "out.txt").write_text(v02_with_waived(D2D))
    tool = bin_dir / "nvbandwidth"
    tool.write_text(f"#!/bin/sh\ncat {tmp_path / 'out.txt'}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    node = LocalNode("n1")
    with pytest.raises(ProbeFailed, match=rf"gave no result for {D2D}: waived"):
        run_nvbandwidth(node, [D2D, "host_to_device_memcpy_ce"])
    assert run_nvbandwidth(node, ["host_to_device_memcpy_ce"]).sums["host_to_device_memcpy_ce"] == 442.52
