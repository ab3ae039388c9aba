"""The SSH layer against a real OpenSSH server: pinned keys, quoting, streaming, reconnects."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hilt.errors import NodeError
from hilt.node.ssh import Node
from hilt.rig.config import BmcConfig, NodeConfig, SshConfig
from tests.support.sshd import keygen, start_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def config_for(sshd, **ssh) -> NodeConfig:
    fields = {"host": "127.0.0.1", "port": sshd.port, "user": sshd.user, "key": str(sshd.client_key),
              "host_key": sshd.host_key, "connect_timeout_s": 5} | ssh
    return NodeConfig(
        bmc=BmcConfig(url="https://127.0.0.1:1", username="${U}", password="${P}"),
        ssh=SshConfig(**fields), profile="sim-4gpu",
    )


@pytest.fixture
def node(sshd):
    with Node("n1", config_for(sshd)) as n:
        yield n


def test_run_separates_streams_and_exit_codes(node):
    result = node.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    with pytest.raises(NodeError, match=r"node n1: sh -c .* exited 3: err"):
        node.run(["sh", "-c", "echo err >&2; exit 3"])


def test_one_connection_is_reused(node):
    node.run(["true"])
    transport = node._client.get_transport()
    for _ in range(5):
        node.run(["true"])
    assert node._client.get_transport() is transport


def test_hostile_values_are_never_run_by_a_shell(node, tmp_path):
    marker = tmp_path / "pwned"
    hostile = f"x; touch {marker}; $(touch {marker}) `touch {marker}`"
    result = node.run(["echo", hostile])
    assert result.stdout.strip() == hostile
    files = node.read_files([f"/nonexistent/{hostile}", "/etc/hostname"])
    assert files[f"/nonexistent/{hostile}"] is None and files["/etc/hostname"]
    assert not marker.exists()


def test_read_files_in_one_round_trip(node, tmp_path):
    (tmp_path / "a").write_text("alpha\n")
    (tmp_path / "b").write_bytes(b"\x00bin\x00")
    found = node.read_files([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "missing")])
    assert found == {str(tmp_path / "a"): "alpha\n", str(tmp_path / "b"): "\x00bin\x00",
                     str(tmp_path / "missing"): None}


def test_timeout_is_enforced(node):
    started = time.monotonic()
    with pytest.raises(NodeError, match="timed out after 1 s"):
        node.run(["sleep", "30"], timeout=1)
    assert time.monotonic() - started < 5


def test_output_is_streamed_line_by_line(node):
    seen: list[tuple[float, str]] = []
    node.run(["sh", "-c", "echo one; sleep 0.6; echo two"],
             on_output=lambda line: seen.append((time.monotonic(), line)))
    assert [line for _, line in seen] == ["one", "two"]
    assert seen[1][0] - seen[0][0] > 0.4


def test_upload(node, tmp_path):
    local = tmp_path / "probe.py"
    local.write_text("print('hi')\n")
    node.upload(local, str(tmp_path / "remote.py"))
    assert Path(tmp_path / "remote.py").read_text() == "print('hi')\n"


def test_changed_host_key_is_refused_with_fingerprint(sshd, tmp_path):
    other = tmp_path / "other_key"
    wrong = keygen(other)
    node = Node("n1", config_for(sshd, host_key=wrong))
    with pytest.raises(NodeError) as info:
        node.run(["true"])
    message = str(info.value)
    assert "CHANGED" in message and "SHA256:" in message and "refusing" in message


def test_unknown_host_key_is_refused_not_accepted(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    node = Node("n1", config_for(sshd, host_key=None, known_hosts=str(empty)))
    with pytest.raises(NodeError, match=r"host key of \[127\.0\.0\.1\]:\d+ is not known: ssh-ed25519 SHA256:"):
        node.run(["true"])


def test_connection_dropped_between_commands_is_reconnected_once(sshd, node):
    first = node.run(["true"])
    assert first.ok
    for pid in sshd.session_pids():  # the server side of our connection dies
        import os
        import signal

        os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    assert node.run(["echo", "again"]).stdout == "again\n"


def test_output_written_after_the_exit_status_is_not_lost(node):
    """OpenSSH sends exit-status when the command's process ends, which can be before the last bytes of its
    output have crossed the channel: a reader that stops at the exit status drops the tail (a fabric snapshot
    lost its last section, NVML, this way under load). A child that outlives the shell forces that order."""
    result = node.run(["sh", "-c", "(sleep 0.5; echo late) & echo early"])
    assert result.stdout == "early\nlate\n"
    scripted = node.run_script("(sleep 0.5; echo tail) &\necho head\nexit 0\n")
    assert scripted.stdout == "head\ntail\n"
