"""Issue 13 end to end on the simulated rack: real-rack shapes (hyphenated and dotted node names, two profiles in
one rig), every gated entry measured and judged against each node's own profile, and a PASS that must be earned."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import yaml

from hilt.exitcodes import ExitCode
from tests.support.sessions import ROOT, run_suites

NCCL = ("-k", "test_nccl_tests")
#: the sim image's declared peak (good 180 GB/s) as nccl-tests reports it at 8 and 16 GiB: peak x s/(s + 8 MiB)
SIM_8G, SIM_16G = 180.0 * 8192 / 8200, 180.0 * 16384 / 16392


def _entry(size: int, value: float, **labels) -> dict:
    return {"metric": "nccl.all_reduce.busbw", "labels": {"size": str(size), "nodes": "1", **labels},
            "value": round(value, 2), "unit": "GB/s", "tolerance": 0.05,
            "source": {"run_id": "sim", "note": "the sim image's declared bandwidth"}}


def mixed_rig(tmp_path: Path) -> Path:
    """gpu-01 (sim-4gpu) and r3-u17.gpu (hgx-h100-8gpu); baselines gating nccl-tests on each profile."""
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    sim = {"profile": "sim-4gpu", "gated": [{"metric": "nccl.all_reduce.busbw", "labels": {"size": ["67108864"]}}],
           "entries": [_entry(2**26, 180.0 * 64 / 72)]}
    hgx = {"profile": "hgx-h100-8gpu",
           "gated": [{"metric": "nccl.all_reduce.busbw", "labels": {"size": ["8589934592", "17179869184"]}}],
           "entries": [_entry(2**33, SIM_8G, dtype="float", gpus_per_node="8"),
                       _entry(2**34, SIM_16G, dtype="float", gpus_per_node="8")]}
    for data in (sim, hgx):
        (baselines / f"{data['profile']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return _rigs(tmp_path, baselines, "[{name: gpu-01, profile: sim-4gpu}, {name: r3-u17.gpu, profile: hgx-h100-8gpu}]",
                 "e2e-mixed", 51)


def _rigs(tmp_path: Path, baselines: Path, nodes: str, name: str, subnet: int) -> Path:
    rigs = tmp_path / "rigs.yaml"
    rigs.write_text(f"""\
default_rig: rack
lease_store: sqlite://leases.sqlite
history: history.sqlite
baselines_dir: {baselines}
rigs:
  rack:
    default_image: good
    provider:
      factory: hilt.sim.provider:SimProvider
      options: {{nodes: {nodes}, boot_delay_s: 1.0, name: {name}, subnet: {subnet}, boot_timeout_s: 12}}
""")
    return rigs


def summary(session) -> dict:
    return json.loads((session.reports / "summary.json").read_text())


def test_two_profiles_real_names_good_passes_regressed_fails_and_a_short_plan_is_inconclusive(tmp_path):
    rigs = mixed_rig(tmp_path)

    good = run_suites(rigs, *NCCL, suites="suites/test_nccl.py")
    assert good.code == ExitCode.PASS, good.output[-4000:]
    s = summary(good)
    assert s["gate"]["outcome"] == "pass" and "gated: 3 of 3 entries measured" in s["gate"]["reason"]
    assert s["node_profiles"] == {"gpu-01": "sim-4gpu", "r3-u17.gpu": "hgx-h100-8gpu"}
    assert {(e["node"], e["profile"]) for e in s["coverage"]["entries"]} == {
        ("gpu-01", "sim-4gpu"), ("r3-u17.gpu", "hgx-h100-8gpu")}
    # the node of each test and metric is the fixture's property, whole names intact
    assert {t["node"] for t in s["tests"] if "[" in t["nodeid"]} == {"gpu-01", "r3-u17.gpu"}
    judged = {(m["node"], m["profile"], m["labels"]["size"]) for m in s["metrics"]
              if m["verdict"] and m["verdict"]["gated"]}
    assert judged == {("gpu-01", "sim-4gpu", "67108864"), ("r3-u17.gpu", "hgx-h100-8gpu", "8589934592"),
                      ("r3-u17.gpu", "hgx-h100-8gpu", "17179869184")}
    hgx = next(m for m in s["metrics"] if m["node"] == "r3-u17.gpu" and m["name"] == "nccl.all_reduce.busbw")
    assert hgx["labels"]["gpus_per_node"] == "8"  # the real plan: -g 8, 8 MiB to 16 GiB
    assert "gated: 3 of 3 entries measured" in (good.reports / "summary.md").read_text()
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        assert {n for (n,) in db.execute("SELECT DISTINCT node FROM metric_points")} >= {"gpu-01", "r3-u17.gpu"}

    regressed = run_suites(rigs, "--image", "regressed", *NCCL, suites="suites/test_nccl.py")
    assert regressed.code == ExitCode.FAILED, regressed.output[-4000:]
    s = summary(regressed)
    assert s["gate"]["outcome"] == "regression"
    assert "node gpu-01" in s["gate"]["reason"] and "node r3-u17.gpu" in s["gate"]["reason"]
    failed = {t["node"]: t["kind"] for t in s["tests"] if t["outcome"] == "failed"}
    assert failed == {"gpu-01": "regression", "r3-u17.gpu": "regression"}

    short = run_suites(rigs, "--probe-sizes", "1M", *NCCL, suites="suites/test_nccl.py")
    assert short.code == ExitCode.INCONCLUSIVE, short.output[-4000:]
    s = summary(short)
    assert s["gate"]["outcome"] == "inconclusive" and "gated: 0 of 3 entries measured" in s["gate"]["reason"]
    assert "nccl.all_reduce.busbw{nodes=1,size=67108864}@gpu-01 (size=67108864 is not in the probe plan" \
        in s["gate"]["reason"]
    assert re.search(r"not measured: .*size=17179869184.*@r3-u17\.gpu", short.output)


def test_hgx_nodes_run_the_real_plan_and_regress_against_the_example_baseline(tmp_path):
    rigs = _rigs(tmp_path, ROOT / "baselines", "[{name: gpu-01, profile: hgx-h100-8gpu}]", "e2e-hgx", 52)
    session = run_suites(rigs, "-k", "test_nccl_tests or test_nvbandwidth",
                         suites="suites/test_nccl.py suites/test_nvbandwidth.py")
    assert session.code == ExitCode.FAILED, session.output[-4000:]
    s = summary(session)
    assert s["gate"]["outcome"] == "regression"
    entries = s["coverage"]["entries"]
    assert len(entries) >= 2 and all(e["measured"] for e in entries), entries
    assert f"gated: {len(entries)} of {len(entries)} entries measured" in session.output
    judged = {m["labels"]["size"] for m in s["metrics"] if m["name"] == "nccl.all_reduce.busbw"
              and m["verdict"] and m["verdict"]["gated"]}
    assert judged == {"8589934592", "17179869184"}  # the real plan: -g 8, 8 MiB to 16 GiB
    reason = s["gate"]["reason"]
    assert "node gpu-01" in reason and "expected 480 GB/s" in reason
    assert "the baseline is not a measurement of this rack (public figure" in reason
