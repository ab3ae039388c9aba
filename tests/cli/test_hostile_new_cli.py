"""The session's new commands used the way a careless or hostile user would: `hilt report --compare`, `hilt
report --outlier`, `hilt rollout` options and ids, and damaged rollout state files. Each bad input must be one
`error:` line naming the option, file or field and what is valid, exit 4 (docs/ci.md), never a traceback or a
silent success. No rack: the rollout cases fail (or must fail) before anything is leased or booted."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import Result

from hilt.history.open import open_history
from hilt.record.run_record import MetricRecord, NodeRecord, RunRecord
from hilt.rollout.state import NodeImage, RolloutNode, RolloutState, StateStore, Wave, check_id, utc_now

Hilt = Callable[..., Result]


def _one_error_line(result: Result, *needles: str) -> str:
    """The result is exit 4 with exactly one `error:` line on stderr holding every needle, and no traceback."""
    assert result.exit_code == 4, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --- hilt report --compare ------------------------------------------------------------------------------


def _run(run_id: str, samples: list[float] | None, rig: str = "sim", node: str = "node1") -> RunRecord:
    return RunRecord(run_id=run_id, started_at="2026-03-01T02:00:00+00:00", finished_at="2026-03-01T02:40:00+00:00",
                     rig=rig, image="img-1", nodes=[NodeRecord(name=node)], tests=[],
                     metrics=[MetricRecord(name="nccl.all_reduce.busbw", unit="GB/s", samples=samples, node=node)]
                     if samples is not None else [])


@pytest.fixture
def history(tmp_path: Path) -> Path:
    db = tmp_path / "history.sqlite"
    store = open_history(db)
    for record in (_run("night-1", [180.0]), _run("night-2", [150.0]), _run("huge", [1e308, 1e308]),
                   _run("tiny", [5e-324]), _run("no-metrics", None), _run("rack-b-1", [150.0], "rack-b", "gpu-01")):
        store.append(record)
    return db


def _strict_json(text: str) -> dict:
    """JSON as jq and every other strict reader takes it: no NaN, no Infinity."""
    def refuse(name: str) -> float:
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_compare_of_a_run_with_itself_is_refused(hilt: Hilt, history: Path) -> None:
    # it used to print "0 version changes, 0 metrics worse" for any run: reads as "nothing changed"
    result = hilt("report", "--history", str(history), "--compare", "night-2", "night-2", "--json")
    _one_error_line(result, "--compare", "the same run 'night-2'", "two different run ids")
    assert result.stdout == ""


def test_compare_json_is_strict_json_when_a_mean_or_ratio_would_overflow(hilt: Hilt, history: Path) -> None:
    # two samples near the float maximum summed to inf; B over a subnormal A is inf: `"ratio": Infinity`
    for a, b in (("night-1", "huge"), ("tiny", "night-1")):
        result = hilt("report", "--history", str(history), "--compare", a, b, "--json")
        assert result.exit_code == 0, result.output
        (metric,) = _strict_json(result.stdout)["metrics"]
        assert metric["change"] == "better"
    (metric,) = _strict_json(hilt("report", "--history", str(history), "--compare", "night-1", "huge",
                                  "--json").stdout)["metrics"]
    assert metric["b"] == pytest.approx(1e308) and metric["ratio"] == pytest.approx(1e308 / 180)
    (metric,) = _strict_json(hilt("report", "--history", str(history), "--compare", "tiny", "night-1",
                                  "--json").stdout)["metrics"]
    assert metric["ratio"] is None  # documented: null when it cannot be given


def test_compare_of_runs_sharing_no_metric_point_warns(hilt: Hilt, history: Path, tmp_path: Path) -> None:
    # two rigs: every row is only_a/only_b, and "0 metrics worse" alone reads as good news
    result = hilt("report", "--history", str(history), "--compare", "night-1", "rack-b-1",
                  "-o", str(tmp_path / "c.html"))
    assert result.exit_code == 0, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("warning: --compare: no metric was measured on the same node in both runs")
    assert "A is of rig 'sim', B of rig 'rack-b'" in line
    # a run without metrics is not that case (nothing to compare is already plain), and neither is a normal pair
    for a, b in (("night-1", "no-metrics"), ("night-1", "night-2")):
        result = hilt("report", "--history", str(history), "--compare", a, b, "--json")
        assert result.exit_code == 0 and result.stderr == "", result.output


@pytest.mark.parametrize("run_id", ["nope", "a\nb", "<script>alert(1)</script>", "\x1b[31mred", "x" * 5000])
def test_compare_of_an_unknown_id_is_one_short_line(hilt: Hilt, history: Path, run_id: str) -> None:
    result = hilt("report", "--history", str(history), "--compare", run_id, "night-2", "--json")
    line = _one_error_line(result, str(history), "no run", "`hilt history list` shows the run ids")
    assert len(line) < 400, len(line)  # a 5000-character id is cut, and says how long it was
    if len(run_id) > 100:
        assert "(5000 characters)" in line


def test_compare_against_a_missing_history_creates_nothing(hilt: Hilt, tmp_path: Path) -> None:
    # a mistyped --history used to create an empty SQLite file (and its directories), then "no run 'a'"
    missing = tmp_path / "typo" / "history.sqlite"
    _one_error_line(hilt("report", "--history", str(missing), "--compare", "a", "b"),
                    f"--history {missing}: no such history file", "postgresql://")
    assert not (tmp_path / "typo").exists()


# --- hilt report --outlier, --min-magnitude, --max-pvalue -------------------------------------------------


@pytest.mark.parametrize(("option", "value"), [
    ("--outlier", "0"), ("--outlier", "1"), ("--outlier", "10"), ("--outlier", "nan"), ("--outlier", "inf"),
    ("--outlier", "-0.1"), ("--min-magnitude", "nan"), ("--min-magnitude", "inf"), ("--min-magnitude", "-1"),
    ("--max-pvalue", "nan"), ("--max-pvalue", "0"), ("--max-pvalue", "2"),
])
def test_report_refuses_a_fraction_out_of_range(hilt: Hilt, history: Path, tmp_path: Path, option: str,
                                                value: str) -> None:
    # `--outlier 0` flagged every node, `--outlier 10` (meant as 10%) and `nan` silently flagged none
    out = tmp_path / "report.html"
    result = hilt("report", "--history", str(history), "--since", "all", "--no-prom", "-o", str(out),
                  option, value)
    _one_error_line(result, option, "a fraction", "e.g. 0.")
    assert not out.exists()


def test_report_takes_a_fraction_in_range(hilt: Hilt, history: Path, tmp_path: Path) -> None:
    result = hilt("report", "--history", str(history), "--since", "all", "--no-prom", "-o",
                  str(tmp_path / "r.html"), "--outlier", "0.05", "--min-magnitude", "0", "--max-pvalue", "1")
    assert result.exit_code == 0, result.output


# --- hilt rollout: options --------------------------------------------------------------------------------


@pytest.fixture
def rollout(hilt: Hilt, tmp_path: Path) -> Callable[..., Result]:
    """`hilt rollout --rigs-file <4 nodes, nothing listening> --image new ARGS` with its own rollouts dir."""
    node = {"bmc": {"url": "http://127.0.0.1:9", "username": "admin", "password": "${HILT_TEST_NO_SUCH_VAR}"},
            "ssh": {"host": "127.0.0.1", "port": 9}, "profile": "sim-4gpu"}
    rigs = tmp_path / "rigs.yaml"
    rigs.write_text(yaml.safe_dump({"default_rig": "lab", "lease_store": f"sqlite://{tmp_path}/leases.sqlite",
                                    "images": {"new": {"url": "http://x/new.tar"}},
                                    "rigs": {"lab": {"nodes": {f"node{i}": node for i in range(1, 5)}}}}))

    def invoke(*args: str, rollouts: Path = tmp_path / "rollouts") -> Result:
        return hilt("rollout", "--rigs-file", str(rigs), "--image", "new", *args,
                    env={"HILT_ROLLOUTS": str(rollouts)})

    return invoke


@pytest.mark.parametrize(("args", "needles"), [
    # already refused on main: kept here so that they stay one line, exit 4, and plan nothing
    (["--canary", "0"], ["--canary '0'", "a whole number of at least 1"]),
    (["--canary", "0%"], ["--canary '0%'", "above 0% and at most 100%"]),
    (["--canary", "150%"], ["--canary '150%'", "at most 100%"]),
    (["--canary", "-1"], ["--canary '-1'", "a node count (1) or a share of the rig (25%)"]),
    (["--canary", "1.5"], ["--canary '1.5'", "whole number"]),
    (["--canary", "nan%"], ["--canary 'nan%'", "a share of the rig (25%)"]),
    (["--waves", ""], ["--waves ''", "50%,100%"]),
    (["--waves", "abc"], ["--waves 'abc'", "a share of the rig (25%)"]),
    (["--on-inconclusive", "foo"], ["--on-inconclusive 'foo'", "stop and rollback"]),
    # accepted on main
    (["--canary", "١"], ["--canary '١'", "a node count (1)"]),  # an Arabic-Indic one: \d took it as 1
    (["--waves", "100%,100%"], ["--waves 100%,100%", "100% is not above the 100% before it"]),
    (["--waves", "2,2,100%"], ["--waves 2,2,100%", "2 is not above the 2 before it"]),
    (["--waves", "50%,,100%"], ["--waves '50%,,100%'", "an empty wave between commas"]),
    (["--waves", "50,100"], ["--waves 50,100", "50 nodes, but the rig has 4", "write 50%"]),
    (["--lease-ttl", "nan"], ["--lease-ttl nan", "finite number above 0"]),  # read as a damaged lease store
    (["--lease-ttl", "0"], ["--lease-ttl 0.0", "above 0"]),  # refused only after the plan was saved
    (["--lease-wait", "-5"], ["--lease-wait -5.0", "0 or more"]),
    (["--lease-wait", "inf"], ["--lease-wait inf", "finite"]),
    (["--canary", "9" * 400], ["--canary '9999", "too large"]),  # float() gives inf: int(inf) raised
    # pytest's last option wins: the gate would judge another rig/image, or write where the rollout never reads
    (["--pytest-args", "-k nccl --rig other"], ["--pytest-args: --rig is set by the rollout", "hilt rollout --rig"]),
    (["--pytest-args", "--image=old"], ["--pytest-args: --image is set by the rollout"]),
    (["--pytest-args", "--hilt-reports /tmp/x"], ["--hilt-reports is set by the rollout", "hilt rollout --reports"]),
    (["--pytest-args", "--rigs-file other.yaml"], ["--rigs-file is set by the rollout"]),
    (["--pytest-args", "--lease-store sqlite:///tmp/l.sqlite"], ["--lease-store is set by the rollout"]),
    (["--suites", "/nonexistent/suites"], ["--suites /nonexistent/suites", "no such file or directory"]),
])
def test_rollout_refuses_bad_options_before_planning(rollout: Callable[..., Result], tmp_path: Path,
                                                     args: list[str], needles: list[str]) -> None:
    _one_error_line(rollout(*args), *needles)
    assert not (tmp_path / "rollouts").exists()  # no plan left behind to show up in `status`'s "recent"


def test_rollout_waves_that_do_not_grow_name_the_offending_wave(rollout: Callable[..., Result]) -> None:
    # main said "the last wave reaches 2 of 4 nodes; end with 100%", about a wave that was never the problem
    _one_error_line(rollout("--waves", "50%,30%"), "--waves 50%,30%", "30% is not above the 50% before it",
                    "e.g. 50%,100%")


def test_rollout_reports_that_is_a_file_is_refused_before_planning(rollout: Callable[..., Result],
                                                                   tmp_path: Path) -> None:
    # main planned the rollout and would have booted the canary before its gate run failed to write there
    blocker = tmp_path / "reports"
    blocker.write_text("")
    _one_error_line(rollout("--reports", str(blocker / "nightly")), f"{blocker} is not a directory")
    assert not (tmp_path / "rollouts").exists()


def test_rollout_state_dir_that_is_a_file_is_an_error_line(rollout: Callable[..., Result], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    _one_error_line(rollout(rollouts=blocker), str(blocker), "cannot write the rollout state",
                    "set HILT_ROLLOUTS to a writable directory")


# --- hilt rollout status/resume/abort: ids and state files -------------------------------------------------

ID = "ro-20260301T020000-abcdef"


@pytest.fixture
def rollouts(tmp_path: Path) -> Path:
    """A saved rollout whose controller is gone, stopped after its canary passed (it can be resumed)."""
    state = RolloutState(id=ID, rig="lab", image="new", image_config={"url": "http://x/new.tar"},
                         rigs_file=str(tmp_path / "missing-rigs.yaml"), canary="1", waves_option="100%",
                         reports_dir=str(tmp_path / "reports"), created_at=utc_now(),
                         controller={"host": os.uname().nodename, "pid": 999_999_999},
                         waves=[Wave(index=1, nodes=["node1"], control=["node2"], status="passed"),
                                Wave(index=2, nodes=["node2"], control=[])],
                         nodes={"node1": RolloutNode(name="node1", wave=1, before=NodeImage(image="old"),
                                                     status="new", rollback_image="old"),
                                "node2": RolloutNode(name="node2", wave=2, before=NodeImage(image="old"))})
    root = tmp_path / "rollouts"
    StateStore(root).save(state)
    return root


def _state_cmd(hilt: Hilt, rollouts: Path, *args: str) -> Result:
    return hilt("rollout", *args, env={"HILT_ROLLOUTS": str(rollouts)})


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "", "a\n", f"{ID}\n", "١٢٣"])
def test_rollout_ids_outside_the_rollouts_dir_are_refused(hilt: Hilt, rollouts: Path, bad: str) -> None:
    # `$` matched before a trailing newline: "ID\n" passed the check and named another path
    for command in ("status", "resume"):
        _one_error_line(_state_cmd(hilt, rollouts, command, bad), f"rollout id {bad!r}", "letters, digits")
    with pytest.raises(Exception, match="rollout id"):
        check_id(bad)


def test_rollout_status_of_a_missing_id_lists_recent_ones(hilt: Hilt, rollouts: Path) -> None:
    _one_error_line(_state_cmd(hilt, rollouts, "status", "ro-nope"), "no rollout 'ro-nope'", f"recent: {ID}",
                    "HILT_ROLLOUTS")


def _damage(rollouts: Path, content: bytes | None = None, **fields: object) -> Path:
    path = rollouts / ID / "state.json"
    if content is None:
        data = json.loads(path.read_text())
        data.update(fields)
        content = json.dumps(data).encode()
    path.write_bytes(content)
    return path


def _edit(rollouts: Path, change: Callable[[dict], object]) -> Path:
    path = rollouts / ID / "state.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("damage", "needles"), [
    # already one line on main
    (lambda r: _damage(r, b'{"schema_version": 1, "id": "ro-'), ["line 1: not JSON"]),
    (lambda r: _damage(r, b""), ["line 1: not JSON"]),
    (lambda r: _damage(r, status="bogus"), ["status: Input should be 'running'"]),
    # tracebacks (exit 3) on main
    (lambda r: _damage(r, b"\xff\xfe{\x00}\x00"), ["byte 0: not UTF-8 text"]),
    (lambda r: _damage(r, b"[" * 100_000 + b"]" * 100_000), ["nested too deep"]),
    # unclear or silently accepted on main
    (lambda r: _damage(r, b"null"), ["(top level): expected a JSON object", "got NoneType"]),
    (lambda r: _damage(r, b"[]"), ["(top level): expected a JSON object", "got list"]),
    (lambda r: _damage(r, lease_ttl_s=float("nan")), ["NaN: not valid JSON"]),
    (lambda r: _damage(r, schema_version=99), ["schema_version: 99 is newer than this hilt reads (1)"]),
    (lambda r: _damage(r, id="ro-other"), ["id: 'ro-other' is not", "rollouts/<its id>/"]),
    (lambda r: _damage(r, id="../../elsewhere"), ["id: '../../elsewhere' is not"]),
    # a controller pid that is no pid: 10**20 overflowed kill() (traceback), -1/0 read as "alive" for ever
    (lambda r: _damage(r, controller={"host": "h", "pid": 10**20}), ["controller.pid: Input should be less than"]),
    (lambda r: _damage(r, controller={"host": "h", "pid": -1}), ["controller.pid: Input should be greater than 0"]),
    # hand-edited plans the engine would index into and fail on half-way through a resume
    (lambda r: _edit(r, lambda d: d["waves"][1]["nodes"].append("ghost")), ["waves.1.nodes: 'ghost' is not in nodes"]),
    (lambda r: _edit(r, lambda d: d["waves"][0]["control"].append("ghost")),
     ["waves.0.control: 'ghost' is not in nodes"]),
    (lambda r: _edit(r, lambda d: d["nodes"]["node2"].update(name="other")), ["nodes.node2.name: 'other'"]),
    (lambda r: _edit(r, lambda d: d["nodes"]["node2"].update(wave=7)), ["nodes.node2.wave: 7, but waves.1"]),
    (lambda r: _edit(r, lambda d: d["waves"][0].update(index=0)), ["waves.0.index: 0, expected 1"]),
    (lambda r: _damage(r, waves=[]), ["nodes.node1: in no wave's nodes"]),
    (lambda r: _damage(r, rollback={"why": "x", "outcome": "aborted", "exit_code": 0, "started_at": utc_now(),
                                    "nodes": ["ghost"]}), ["rollback.nodes: 'ghost' is not in nodes"]),
])
def test_a_damaged_state_file_is_one_line_naming_the_file(hilt: Hilt, rollouts: Path, damage, needles) -> None:
    path = damage(rollouts)
    for command in (["status"], ["status", "--json"], ["resume"], ["abort", "--why", "test"]):
        result = _state_cmd(hilt, rollouts, *command[:1], ID, *command[1:])
        _one_error_line(result, f"error: {path}: ", *needles)
        assert result.stdout == ""


def test_a_state_file_that_is_a_directory_is_one_line(hilt: Hilt, rollouts: Path) -> None:
    path = rollouts / ID / "state.json"
    path.unlink()
    path.mkdir()
    _one_error_line(_state_cmd(hilt, rollouts, "status", ID), f"{path}: cannot read the rollout state")


def test_abort_needs_a_reason(hilt: Hilt, rollouts: Path) -> None:
    _one_error_line(_state_cmd(hilt, rollouts, "abort", ID), "Missing option '--why'")
    for why in ("", "   ", "line one\nline two"):
        _one_error_line(_state_cmd(hilt, rollouts, "abort", ID, "--why", why), "--why", "one line of text")
    state = StateStore(rollouts).load(ID)
    assert state.status == "running" and state.rollback is None  # nothing was rolled back


def test_a_finished_rollout_is_not_resumed(hilt: Hilt, rollouts: Path) -> None:
    _damage(rollouts, status="passed", exit_code=0)
    _one_error_line(_state_cmd(hilt, rollouts, "resume", ID), f"rollout {ID} is finished (passed)",
                    "nothing to resume")
