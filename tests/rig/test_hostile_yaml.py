"""Hostile YAML (issue 20 items 5, 6, 7): duplicate keys, alias bombs, bytes that are not UTF-8, deep nesting.

Each is refused with one line naming the file and the line, through the one loader every config file uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hilt.errors import ConfigError
from hilt.rig.config import load_inventory
from hilt.util import safe_yaml
from tests.support.rigs import GOOD


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "rigs.yaml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def bomb(levels: int, width: int) -> str:
    """The classic billion-laughs document: each level holds ``width`` aliases of the one before."""
    lines = ['l0: &l0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- duplicate keys (item 5)


def test_duplicate_key_in_a_node_names_both_lines(tmp_path):
    text = GOOD.replace("          password: ${IDRAC_PASSWORD}\n",
                        "          password: ${IDRAC_PASSWORD}\n          password: file:/etc/other\n")
    message = error_of(write(tmp_path, text))
    assert message.startswith(f"{tmp_path / 'rigs.yaml'}:19: duplicate key 'password' (first at line 18)")


@pytest.mark.parametrize("text, line, first", [
    ("default_rig: a\ndefault_rig: b\nrigs: {a: {}, b: {}}\n", 2, 1),   # top level
    ("rigs:\n  a: {}\n  a: {nodes: {}}\n", 3, 2),                      # the rig names themselves
    ("rigs: {a: {}, b: {}, a: {}}\n", 1, 1),                            # flow style
])
def test_duplicate_keys_anywhere_are_errors(tmp_path, text, line, first):
    message = error_of(write(tmp_path, text))
    assert f"rigs.yaml:{line}: duplicate key" in message and f"(first at line {first})" in message


def test_merge_keys_still_override_as_yaml_says(tmp_path):
    doc = safe_yaml.load("base: &b {verify: true, auth: basic}\nnode:\n  <<: *b\n  auth: session\n", "x.yaml")
    assert doc.data["node"] == {"verify": True, "auth": "session"}
    assert doc.line(("node", "verify")) == 1 and doc.line(("node", "auth")) == 4


# ---------------------------------------------------------------- alias bombs (item 6)


def test_a_2kb_alias_bomb_is_refused_before_anything_walks_it():
    text = bomb(levels=9, width=9)  # 9^9 = 387 million nodes once expanded
    assert len(text) < 2048
    with pytest.raises(ConfigError, match=r"x\.yaml:\d+: expands to more than 200000 nodes .* alias bomb"):
        safe_yaml.load(text, "x.yaml")


def test_a_bomb_in_rigs_yaml_is_refused_not_walked_for_line_numbers(tmp_path):
    """On main the bomb hides under an unknown field: the error path walked every expanded node."""
    text = bomb(levels=6, width=10).replace("l0:", "x0:") + GOOD
    message = error_of(write(tmp_path, text))
    assert "alias bomb" in message and message.startswith(str(tmp_path / "rigs.yaml"))


def test_too_many_aliases_are_refused_even_when_small():
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (safe_yaml.MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(ConfigError, match=r"x\.yaml:2: more than 1000 aliases"):
        safe_yaml.load(text, "x.yaml")


def test_a_few_aliases_for_shared_settings_load(tmp_path):
    text = GOOD.replace("            bmc:\n", "            bmc: &bmc\n", 1)
    assert load_inventory(write(tmp_path, text)).rig(None).nodes["gpu-01"].bmc.url == "https://10.0.0.11"
    recursive = safe_yaml.load("a: &a [1, *a]\n", "x.yaml").data["a"]
    assert recursive[1] is recursive


# ---------------------------------------------------------------- bytes and depth (item 7)


def test_non_utf8_bytes_name_file_line_and_column(tmp_path):
    raw = GOOD.encode().replace(b"hgx-h100-8gpu", b"hgx-h100-\xff8gpu")
    message = error_of(write(tmp_path, raw))
    assert message.startswith(f"{tmp_path / 'rigs.yaml'}:25:27: not UTF-8 (byte 0xff")


def test_latin1_file_is_refused_with_its_position(tmp_path):
    message = error_of(write(tmp_path, "description: caf\xe9\n".encode("latin-1")))
    assert ":1:17: not UTF-8 (byte 0xe9 at offset 16)" in message


def test_control_characters_name_the_line(tmp_path):
    message = error_of(write(tmp_path, "default_rig: a\nrigs: {a: {description: \"x\x07\"}}\n"))
    assert "rigs.yaml:2: character 0x0007 is not allowed" in message


def test_deep_nesting_is_an_error_not_a_recursion_traceback(tmp_path):
    message = error_of(write(tmp_path, "rigs: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert "rigs.yaml:1: nested deeper than 64 levels" in message


def test_a_directory_as_rigs_file_is_one_line(tmp_path):
    (tmp_path / "rigs.yaml").mkdir()
    assert "cannot read rigs file" in error_of(tmp_path / "rigs.yaml")


# ---------------------------------------------------------------- a broken rigs.yaml and the hilt command


def _hilt(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HILT_RIGS", "XDG_STATE_HOME")}
    env["XDG_STATE_HOME"] = str(cwd / "state")
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    return subprocess.run([sys.executable, "-c", "from hilt.cli import main; main()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("content", [b"rigs: {a: \xff}\n", b"rigs: {}\nrigs: {}\n", bomb(9, 9).encode()])
def test_broken_rigs_yaml_in_cwd_neither_crashes_help_nor_switches_the_store(tmp_path, content):
    write(tmp_path, content)
    help_ = _hilt(tmp_path, "--help")
    assert help_.returncode == 0 and "Traceback" not in help_.stderr, help_.stderr
    for command in (["leases"], ["nodes"]):
        result = _hilt(tmp_path, *command)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert "Traceback" not in output and "rigs.yaml:" in output and "--lease-store" in output
    assert not list(tmp_path.rglob("*.sqlite")), "a default lease store was created"


@pytest.mark.parametrize("command, names", [(["baseline", "show"], "the baselines directory"),
                                            (["report"], "the run history"),
                                            (["history", "list"], "the run history")])
def test_broken_rigs_yaml_is_the_error_of_commands_that_take_their_defaults_from_it(tmp_path, command, names):
    """Not baselines/ and reports/history.sqlite behind the user's back: the file's one-line error, exit 4."""
    write(tmp_path, b"rigs: {}\nrigs: {}\n")
    result = _hilt(tmp_path, *command)
    assert result.returncode == 4, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: rigs.yaml:") and names in lines[0], result.stderr
    assert not (tmp_path / "reports").exists(), "a default history or report was written"
    assert _hilt(tmp_path, *command, "--help").returncode == 0


def test_broken_rigs_yaml_does_not_stop_a_history_named_on_the_command_line(tmp_path):
    write(tmp_path, b"rigs: {}\nrigs: {}\n")
    result = _hilt(tmp_path, "history", "list", "--history", str(tmp_path / "mine.sqlite"))
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- the history's default place


def _history_list(cwd: Path) -> subprocess.CompletedProcess:
    return _hilt(cwd, "history", "list", "--since", "all", "--json")


def test_the_default_history_outlives_make_clean(tmp_path):
    """Not reports/history.sqlite (deleted by `make clean` and by CI clean-ups of reports/): the state directory."""
    from hilt.record.run_record import RunRecord
    from hilt.rig.config import load_inventory

    write(tmp_path, b"default_rig: lab\nrigs: {lab: {}}\n")
    summary = tmp_path / "summary.json"
    summary.write_text(RunRecord(run_id="night-1", started_at="2026-03-01T02:00:00Z", rig="lab").model_dump_json())
    imported = _hilt(tmp_path, "history", "import", str(summary))
    assert imported.returncode == 0, imported.stderr
    assert (tmp_path / "state" / "hilt" / "history.sqlite").is_file()
    assert not (tmp_path / "reports").exists()
    listed = _history_list(tmp_path)
    assert listed.returncode == 0 and "night-1" in listed.stdout and listed.stderr == "", listed.stderr
    assert load_inventory(tmp_path / "rigs.yaml").history_note is None


def test_a_history_at_the_old_default_place_is_still_read_with_a_message(tmp_path):
    from hilt.history.open import open_history
    from hilt.record.run_record import RunRecord

    write(tmp_path, b"default_rig: lab\nrigs: {lab: {}}\n")
    old = tmp_path / "reports" / "history.sqlite"
    open_history(old).append(RunRecord(run_id="night-0", started_at="2026-02-01T02:00:00Z", rig="lab"))
    listed = _history_list(tmp_path)
    assert listed.returncode == 0 and "night-0" in listed.stdout, listed.stdout + listed.stderr
    (line,) = listed.stderr.strip().splitlines()
    assert "old default location" in line and str(old) in line and str(tmp_path / "state" / "hilt") in line
    assert not (tmp_path / "state" / "hilt" / "history.sqlite").exists()  # read where it is, nothing moved
