"""Issue 20 item 11: values from data are printed as text in every command, never read as Rich markup.

``[/dev/nvme0n1]`` in a health reason made `hilt nodes set-health` raise MarkupError after applying the change,
and then `hilt nodes` crashed for every user; node names, holder purposes and run ids did the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hilt.lease import Holder, open_store
from hilt.record.run_record import MetricRecord, RunRecord
from tests.support.markup import MARKUP


def test_health_reason_with_markup_is_set_and_listed(hilt, tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path}/leases.sqlite"
    why = f"NVMe {MARKUP} failing"
    done = hilt("nodes", "set-health", "rig/n1", "maintenance", "--why", why, "--by", MARKUP, "--lease-store", store)
    assert done.exit_code == 0, done.output
    assert why in done.output
    listing = hilt("nodes", "--lease-store", store)
    assert listing.exit_code == 0, listing.output
    assert why in listing.output and MARKUP in listing.output  # the reason, and who set it, in the history
    as_json = json.loads(hilt("nodes", "--json", "--lease-store", store).stdout)
    assert as_json["nodes"][0]["reason"] == why and as_json["history"][0]["by"] == MARKUP


def test_node_names_holder_purposes_and_break_reasons_with_markup(hilt, tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/leases.sqlite"
    node = f"rig/n{MARKUP}"
    with open_store(url) as store:
        lease = store.acquire([node], Holder(user="ci", host="runner", pid=7, purpose=f"nightly {MARKUP}"), ttl_s=60)
    listing = hilt("leases", "--lease-store", url)
    assert listing.exit_code == 0, listing.output
    assert f"nightly {MARKUP}" in listing.output
    assert hilt("nodes", "--lease-store", url).exit_code == 0
    broke = hilt("leases", "break", node, "--why", f"rack {MARKUP}", "--by", "ops", "--lease-store", url)
    assert broke.exit_code == 0, broke.output
    assert lease.id in broke.output and node in broke.output
    after = hilt("leases", "--lease-store", url)
    assert after.exit_code == 0 and f"rack {MARKUP}" in after.output


def test_node_names_from_rigs_yaml_with_markup(hilt, rigs_file: Path) -> None:
    done = hilt("rigs", "--rigs-file", str(rigs_file), "--rig", "lab")
    assert done.exit_code == 0, done.output
    assert f"n1{MARKUP}" in done.output and "unreachable" in done.output


def test_run_ids_and_rigs_with_markup_in_history_and_report(hilt, tmp_path: Path) -> None:
    run = RunRecord(run_id=f"night-{MARKUP}", started_at="2026-03-01T02:00:00Z", rig=f"lab{MARKUP}",
                    image=f"img {MARKUP}", metrics=[MetricRecord(name="nccl.busbw", unit="GB/s", samples=[1.0])])
    summary = tmp_path / "summary.json"
    summary.write_text(run.model_dump_json())
    db = str(tmp_path / "history.sqlite")
    done = hilt("history", "import", str(summary), "--history", db)
    assert done.exit_code == 0, done.output
    assert run.run_id in done.output
    listing = hilt("history", "list", "--history", db)
    assert listing.exit_code == 0, listing.output
    assert run.run_id in listing.output
    report = hilt("report", "--since", "all", "--history", db, "-o", str(tmp_path / "r" / "report.html"))
    assert report.exit_code == 0, report.output
    assert f"(run {run.run_id})" in report.output


def test_baseline_names_with_markup(hilt, tmp_path: Path, monkeypatch) -> None:
    from hilt.gate import cli as gate_cli

    (tmp_path / "rack.yaml").write_text(yaml.safe_dump({"profile": "rack", "entries": [
        {"metric": f"bw{MARKUP}", "labels": {"size": MARKUP}, "value": 1.0, "unit": "GB/s",
         "source": {"note": MARKUP}}]}))
    monkeypatch.setattr(gate_cli, "baselines_dir", tmp_path)
    done = hilt("baseline", "show", "--profile", "rack")
    assert done.exit_code == 0, done.output
    assert f"bw{MARKUP}" in done.output


def test_errors_naming_data_with_markup_are_printed_as_text(hilt, rigs_file: Path) -> None:
    done = hilt("rigs", "--rigs-file", str(rigs_file), "--rig", MARKUP)
    assert done.exit_code == 4, done.output
    assert f"unknown rig '{MARKUP}'" in done.output
