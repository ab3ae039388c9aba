"""Issue 20 item 17: after a session on the simulated rack, nothing under reports/ (what CI uploads) holds a
private key or a credential, and the sim's runtime state (where its secrets were) is gone."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hilt.exitcodes import ExitCode
from hilt.util.locations import runtime_dir
from tests.support.sessions import run_suites


def test_reports_hold_no_key_or_credential_and_the_runtime_state_is_removed(sim_rig, tmp_path, monkeypatch):
    rigs = sim_rig(nodes=1)
    notes_file = tmp_path / "secrets.json"
    monkeypatch.setenv("HILT_TEST_SECRETS_OUT", str(notes_file))
    session = run_suites(rigs, suites="tests/e2e/sessions/session_secrets.py suites/test_boot.py")
    assert session.code == ExitCode.PASS, session.output[-4000:]
    notes = json.loads(notes_file.read_text())

    state_dir = Path(notes["state_dir"])
    assert not state_dir.exists(), f"the sim's runtime state {state_dir} outlived the session"
    assert session.reports.resolve() not in state_dir.resolve().parents
    assert runtime_dir().resolve() in state_dir.resolve().parents

    needles = {"the BMC password": notes["password"], "the htpasswd hash": notes["htpasswd_hash"],
               **{f"private key {i}": body for i, body in enumerate(notes["key_bodies"])}}
    files = [p for p in session.reports.rglob("*") if p.is_file()]
    assert any(p.name == "daemon.log" for p in files), "the sim's log is kept for a person reading a failed run"
    for path in files:
        data = path.read_bytes()
        assert b"PRIVATE KEY-----" not in data, f"{path} holds a private key"
        for what, needle in needles.items():
            assert needle.encode() not in data, f"{path} holds {what}"
        if path.name in ("htpasswd", "bmc-pass", "bmc-user") or path.name.startswith("ssh_host_"):
            raise AssertionError(f"{path}: a credential file under reports/")
    assert os.stat(runtime_dir()).st_mode & 0o077 == 0, "the runtime directory is private to its user"
