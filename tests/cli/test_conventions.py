"""Issue 14's CLI conventions: --version, --json listings, HILT_* variables, one-line errors, one exit-code
table, unknown names are errors, and the JSON schema of rigs.yaml."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from hilt.exitcodes import ExitCode
from hilt.lease import Holder, open_store
from hilt.record.run_record import MetricRecord, RunRecord
from tests.support.markup import MARKUP

REPO = Path(__file__).resolve().parents[2]


def test_version_through_the_installed_command() -> None:
    done = subprocess.run([sys.executable, "-m", "hilt.cli", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"hilt {version('hilt')}"


def _documented_keys() -> dict[str, set[str]]:
    """The keys docs/ci.md lists for each `--json` command, by command (`rigs`, `baseline show`, ...)."""
    section = (REPO / "docs" / "ci.md").read_text().split("## Machine-readable listings")[1]
    documented = {}
    for bullet in section.split("\n- `hilt ")[1:]:
        command = re.match(r"[a-z][a-z0-9]*(?: [a-z]+)*?(?= --| [A-Z]|`)", bullet)
        assert command, f"docs/ci.md: cannot read the command of the --json bullet `hilt {bullet[:40]}...`"
        command = command.group(0)
        documented[command] = set(re.findall(r'"([a-z_]+)"', bullet))
    return documented


def _keys(document: object) -> set[str]:
    """Every key of a JSON document, but not those of `labels` (a metric's own label names are data)."""
    if isinstance(document, list):
        return set().union(*map(_keys, document)) if document else set()
    if not isinstance(document, dict):
        return set()
    return set(document) | set().union(set(), *(_keys(v) for k, v in document.items() if k != "labels"))


def test_every_listing_has_json_with_documented_keys(hilt, rigs_file: Path, tmp_path: Path, monkeypatch) -> None:
    from hilt.gate import cli as gate_cli

    monkeypatch.setattr(gate_cli, "baselines_dir", REPO / "baselines")
    documented = _documented_keys()
    url = f"sqlite://{tmp_path}/leases.sqlite"
    with open_store(url) as store:
        store.acquire(["lab/n2"], Holder(user="ci", host="r1", pid=3, purpose="nightly"), ttl_s=60)
    rigs = json.loads(hilt("rigs", "--rigs-file", str(rigs_file), "--json").stdout)
    assert [r["name"] for r in rigs["rigs"]] == ["lab", "other"]
    node = rigs["rigs"][0]["nodes"][0]
    assert set(node) == {"name", "profile", "power", "power_error", "ssh", "health", "lease"}
    assert node["power"] is None and node["power_error"] and node["ssh"] is False and node["health"] == "unknown"

    leases = json.loads(hilt("leases", "--json", "--lease-store", url).stdout)
    (lease,) = leases["leases"]
    assert lease["nodes"] == ["lab/n2"] and lease["holder"]["user"] == "ci" and lease["purpose"] == "nightly"
    assert lease["acquired_at"].endswith("Z") and leases["events"] == []
    assert json.loads(hilt("leases", "list", "--json", "--lease-store", url).stdout) == leases

    assert hilt("nodes", "set-health", "lab/n2", "bad", "--why", "psu", "--lease-store", url).exit_code == 0
    nodes = json.loads(hilt("nodes", "--json", "--lease-store", url).stdout)
    assert nodes["nodes"][0] == {"node": "lab/n2", "health": "bad", "since": nodes["nodes"][0]["since"],
                                 "reason": "psu", "consecutive_failures": 0, "lease_id": lease["id"],
                                 "leased_by": "ci@r1 pid 3"}
    assert nodes["history"][0]["from"] == "unknown" and nodes["history"][0]["to"] == "bad"

    summary = tmp_path / "summary.json"
    summary.write_text(RunRecord(run_id="r1", started_at="2026-03-01T02:00:00Z", rig="lab").model_dump_json())
    db = str(tmp_path / "history.sqlite")
    assert hilt("history", "import", str(summary), "--history", db).exit_code == 0
    runs = json.loads(hilt("history", "list", "--json", "--history", db).stdout)
    assert runs == {"runs": [{"run_id": "r1", "started_at": "2026-03-01T02:00:00Z", "rig": "lab", "image": None,
                              "profile": None, "status": runs["runs"][0]["status"], "gate": None, "tests": 0,
                              "metrics": 0}]}

    baselines = json.loads(hilt("baseline", "show", "--json").stdout)
    assert baselines["profiles"], "the repository's baselines/ holds profiles"
    entry = baselines["profiles"][0]["entries"][0]
    assert {"metric", "labels", "value", "unit", "tolerance", "higher_is_better", "gated", "samples",
            "source"} == set(entry)
    profile = baselines["profiles"][0]["profile"]
    summary.write_text(RunRecord(run_id="r2", started_at="2026-03-01T02:00:00Z", rig="lab", profile=profile,
                                 metrics=[MetricRecord(name=entry["metric"], unit=entry["unit"], labels=entry["labels"],
                                                       samples=[entry["value"]])]).model_dump_json())
    changes = json.loads(hilt("baseline", "diff", str(summary), "--json").stdout)
    assert changes["run_id"] == "r2" and changes["changes"][0]["metric"] == entry["metric"]
    assert changes["changes"][0]["action"] in ("update", "keep")

    outputs = {"rigs": rigs, "leases": leases, "nodes": nodes, "history list": runs, "baseline show": baselines,
               "baseline diff": changes}
    assert set(outputs) <= set(documented), sorted(documented)
    for command, output in outputs.items():
        assert _keys(output) <= documented[command], f"hilt {command} --json: undocumented keys"


def test_environment_variables_are_the_defaults(hilt, rigs_file: Path, tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/env.sqlite"
    assert hilt("nodes", "set-health", "x/n1", "bad", "--why", "w", env={"HILT_LEASE_STORE": url}).exit_code == 0
    with open_store(url) as store:
        assert store.health("x/n1").reason == "w"
    checked = hilt("rigs", "check", env={"HILT_RIGS": str(rigs_file)})
    assert str(rigs_file) in checked.output  # it checked that file, not ./rigs.yaml


def test_run_passes_hilt_rig_image_and_lease_store_to_pytest(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "conftest.py").write_text(
        "def pytest_collection_finish(session):\n"
        "    o = session.config.option\n"
        "    print('GOT', o.rig, o.image, o.lease_store, o.rigs_file)\n")
    (suites / "test_x.py").write_text("def test_x():\n    pass\n")
    env = {"HILT_RIG": "lab", "HILT_IMAGE": "img-7", "HILT_LEASE_STORE": "sqlite:///tmp/x.sqlite",
           "HILT_RIGS": str(tmp_path / "r.yaml"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "hilt.cli", "run", "--suites", str(suites), "--reports",
                           str(tmp_path / "reports"), "--collect-only", "-q", "-s", "-p", "no:xdist"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert f"GOT lab img-7 sqlite:///tmp/x.sqlite {tmp_path / 'r.yaml'}" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("args", [
    ["rigs", "--rigs-file", "{broken}"],
    ["rigs", "check", "{broken}"],
    ["leases", "--lease-store", "bogus://x"],
    ["nodes", "--lease-store", "sqlite://"],
    ["history", "import", "{bad_summary}", "--history", "{tmp}/h.sqlite"],
    ["history", "list", "--since", "last tuesday", "--history", "{tmp}/h.sqlite"],
    ["report", "--since", "last tuesday", "--history", "{tmp}/h.sqlite"],
    ["baseline", "diff", "{bad_summary}"],
    ["baseline", "show", "--profile", "no-such-profile"],
    ["sim", "image", "build", "good", "--arch", "sparc"],
    ["rigs", "--no-such-option"],
    ["leases", "release"],
    ["no-such-command"],
])
def test_config_and_usage_errors_exit_4_on_one_unwrapped_line(hilt, tmp_path: Path, args: list[str]) -> None:
    long_dir = tmp_path / ("d" * 90)
    long_dir.mkdir()
    broken = long_dir / "rigs.yaml"
    broken.write_text("rigs: {lab: {nodes: {n1: {bmc: 3}}}}\n")
    bad_summary = long_dir / "summary.json"
    bad_summary.write_text('{"run_id": "x"}')
    argv = [a.format(broken=broken, bad_summary=bad_summary, tmp=tmp_path) for a in args]
    done = hilt(*argv, columns=80)
    assert done.exit_code == ExitCode.USAGE_ERROR, done.output
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors, done.output
    assert all(line.strip() for line in done.stderr.splitlines()), "no continuation lines: " + done.stderr
    if any("{broken}" in a or "{bad_summary}" in a for a in args):  # the 100-column path is never cut
        assert any(str(long_dir) in line for line in errors), done.stderr


def test_unknown_names_are_errors(hilt, rigs_file: Path, tmp_path: Path) -> None:
    done = hilt("rigs", "--rigs-file", str(rigs_file), "--rig", "nope")
    assert done.exit_code == ExitCode.USAGE_ERROR and "unknown rig 'nope'; known rigs: lab, other" in done.stderr
    summary = tmp_path / "summary.json"
    summary.write_text(RunRecord(run_id="r1", started_at="2026-03-01T02:00:00Z", rig="lab").model_dump_json())
    db = str(tmp_path / "history.sqlite")
    hilt("history", "import", str(summary), "--history", db)
    for command in (["history", "list"], ["report", "-o", str(tmp_path / "r.html")]):
        done = hilt(*command, "--rig", "nope", "--since", "all", "--history", db)
        assert done.exit_code == ExitCode.USAGE_ERROR, done.output
        assert "no run of rig 'nope'" in done.stderr and "rigs there: lab" in done.stderr
    released = hilt("leases", "release", "no-such-lease", "--lease-store", f"sqlite://{tmp_path}/l.sqlite")
    assert released.exit_code == ExitCode.USAGE_ERROR and "no lease no-such-lease" in released.stderr
    broken = hilt("leases", "break", "lab/n9", "--why", "x", "--lease-store", f"sqlite://{tmp_path}/l.sqlite")
    assert broken.exit_code == ExitCode.USAGE_ERROR and "node lab/n9 is not leased" in broken.stderr


def test_infrastructure_errors_exit_6(hilt, tmp_path: Path) -> None:
    done = hilt("leases", "--lease-store", "etcd://127.0.0.1:9")  # nothing listens there
    assert done.exit_code == ExitCode.INCONCLUSIVE, done.output
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1


def test_rigs_schema_describes_rigs_yaml(hilt) -> None:
    done = hilt("rigs", "schema")
    assert done.exit_code == 0, done.output
    schema = json.loads(done.stdout)
    assert schema["additionalProperties"] is False and "rigs" in schema["required"]
    assert "source" not in schema["properties"]
    repo_yaml = yaml.safe_load((REPO / "rigs.yaml").read_text())
    assert set(repo_yaml) <= set(schema["properties"])
    node = schema["$defs"]["NodeConfig"]
    assert {"bmc", "ssh", "profile"} <= set(node["required"])
    password = re.compile(schema["$defs"]["BmcConfig"]["properties"]["password"]["pattern"])
    assert password.match("${BMC_PASSWORD}") and password.match("file:/etc/hilt/pw")
    assert not password.match("hunter2")  # what the loader refuses, the editor flags


def test_pytest_options_read_the_same_variables(rigs_file: Path, tmp_path: Path) -> None:
    """Plain pytest (no `hilt run`): HILT_RIG, HILT_IMAGE and HILT_LEASE_STORE reach the rig session, and a
    variable alone never starts one (an exported HILT_RIG does not turn unit tests into a rig run)."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_x.py").write_text("def test_x():\n    pass\n")
    base = [sys.executable, "-m", "pytest", "t", "-p", "no:cacheprovider", "--hilt-reports", str(tmp_path / "rep")]
    rig = ["-o", "hilt_rig_suites=true"]
    env = {"PATH": "/usr/bin:/bin", "HILT_RIGS": str(rigs_file)}
    cases = {
        "rig": (rig, {"HILT_RIG": "nope"}, "unknown rig 'nope'"),
        "image": (rig, {"HILT_RIG": "lab", "HILT_IMAGE": "nope-img"}, "unknown image 'nope-img'"),
        "store": (rig, {"HILT_RIG": "lab", "HILT_IMAGE": "https://h/i.iso", "HILT_LEASE_STORE": "bogus://x"},
                  "bogus://x"),
        "no session": ([], {"HILT_RIG": "nope"}, "1 passed"),
    }
    procs = {name: subprocess.Popen(base + extra, cwd=tmp_path, env={**env, **variables}, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for name, (extra, variables, _) in cases.items()}
    for name, proc in procs.items():
        output = proc.communicate(timeout=120)[0]
        expected = cases[name][2]
        assert expected in output, f"{name}: {output}"
        assert proc.returncode == (0 if name == "no session" else ExitCode.USAGE_ERROR), f"{name}: {output}"


def test_node_names_are_checked_against_rigs_yaml(rigs_file: Path) -> None:
    """The real command in a directory with a rigs.yaml: `nodes set-health` on a typo is refused (it would
    record health for a node that does not exist), and `hilt nodes` lists the inventory's never-checked nodes."""
    def hilt_here(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "hilt.cli", *args], cwd=rigs_file.parent, text=True,
                                env={"PATH": "/usr/bin:/bin", "COLUMNS": "80"}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    typo, unknown_rig, listing = (hilt_here("nodes", "set-health", "lab/n2", "bad", "--why", "x"),
                                  hilt_here("nodes", "set-health", "lba/n1", "bad", "--why", "x"),
                                  hilt_here("nodes", "--json"))
    out, err = typo.communicate(timeout=120)
    assert typo.returncode == ExitCode.USAGE_ERROR, out + err
    assert "unknown node 'lab/n2'; known nodes: lab/n1" in err
    out, err = unknown_rig.communicate(timeout=120)
    assert unknown_rig.returncode == ExitCode.USAGE_ERROR and "unknown rig 'lba'" in err, out + err
    out, err = listing.communicate(timeout=120)
    assert listing.returncode == 0, err
    assert [n["node"] for n in json.loads(out)["nodes"]] == [f"lab/n1{MARKUP}"]
