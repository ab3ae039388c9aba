"""The PostgreSQL history as a platform team meets it: rigs.yaml, credentials by reference, moving an existing
SQLite history over with ``hilt history migrate``, and the errors a CI log shows. Real server: testkit/pgserver.py.
(The store's behaviour itself, round trips to 8 concurrent writers, runs on both stores in test_history_store.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hilt.history.base import HistoryError
from hilt.history.open import open_history
from hilt.report import cli
from hilt.report.cli import history_app, report_app
from hilt.rig.config import load_inventory
from hilt.rig.credentials import Secret
from testkit.pgserver import PASSWORD_ENV
from tests.support.sessions import session_env

runner = CliRunner()
REF = Secret("${" + PASSWORD_ENV + "}")


@pytest.fixture
def pg_url(pg_server, request) -> str:
    return pg_server.create_database(f"t_{abs(hash(request.node.nodeid)):x}")


def test_migrate_moves_a_sqlite_history_and_the_report_reads_it(tmp_path: Path, pg_url: str, nightly,
                                                              monkeypatch) -> None:
    old = tmp_path / "history.sqlite"
    runs = nightly(30)
    for r in runs:
        open_history(old).append(r)
    monkeypatch.setattr(cli, "default_history_path", str(old))
    done = runner.invoke(history_app, ["migrate", "--to", pg_url, "--to-password", str(REF)])
    assert done.exit_code == 0, done.output
    assert "migrated 30 runs" in done.output
    pg = open_history(pg_url, REF)
    assert pg.runs() == runs  # every field of every run, in order
    assert pg.series_keys() == open_history(old).series_keys()
    # rerunning (an interrupted migration finished later) keeps one copy of each run
    assert runner.invoke(history_app, ["migrate", "--to", pg_url, "--to-password", str(REF)]).exit_code == 0
    assert len(pg) == 30
    # rigs.yaml now points at the server: the report is built from it, password from the reference
    monkeypatch.setattr(cli, "default_history_path", pg_url)
    monkeypatch.setattr(cli, "default_history_password", REF)
    out = tmp_path / "report.html"
    done = runner.invoke(report_app, ["--since", "all", "-o", str(out), "--no-prom"])
    assert done.exit_code == 0, done.output
    assert "(30 runs)" in done.output and "img-1.4.3-regressed" in out.read_text()


def test_rigs_yaml_history_url_and_password_reference(tmp_path: Path, pg_server, pg_url: str, nightly) -> None:
    rigs = tmp_path / "rigs.yaml"
    rigs.write_text(f"history: {pg_url}\nhistory_password: ${{{PASSWORD_ENV}}}\ndefault_rig: lab\n"
                    "rigs:\n  lab: {}\n")
    inventory = load_inventory(rigs)
    assert inventory.history == pg_url  # a URL is not made into a path next to rigs.yaml
    store = open_history(inventory.history, inventory.history_password)
    store.append(nightly(1)[0])
    assert len(open_history(inventory.history, inventory.history_password)) == 1


def test_password_in_the_url_is_refused_in_rigs_yaml_and_on_the_command_line(tmp_path: Path, pg_url: str) -> None:
    rigs = tmp_path / "rigs.yaml"
    rigs.write_text("history: postgresql://hilt:hunter2@db.lab/hilt\ndefault_rig: lab\nrigs:\n  lab: {}\n")
    with pytest.raises(Exception, match=r"rigs\.yaml:1: history: a password is never written in the URL") as info:
        load_inventory(rigs)
    assert "hunter2" not in str(info.value)
    with pytest.raises(HistoryError, match=r"postgresql://hilt:\*\*\*@db\.lab/hilt: a password is never") as info:
        open_history("postgresql://hilt:hunter2@db.lab/hilt")
    assert "hunter2" not in str(info.value)
    done = runner.invoke(history_app, ["migrate", "--to", pg_url, "--to-password", "hunter2",
                                       "--from", str(tmp_path / "h.sqlite")])
    assert done.exit_code == 4 and "--to-password: give a reference" in done.output
    assert "hunter2" not in done.output


def test_a_password_holding_a_slash_on_the_command_line_is_refused_never_shown(tmp_path: Path) -> None:
    """``hilt report --history URL``: a password with "/" is no password to urlsplit. Before: a connection to host
    "hilt" was tried and its error printed the URL, password and all."""
    url = "postgresql://hilt:hun/ter2@db.lab/hilt"
    with pytest.raises(HistoryError, match=r"^postgresql://hilt:\*\*\*@db\.lab/hilt: a password is never") as info:
        open_history(url)
    assert "ter2" not in str(info.value)
    done = runner.invoke(report_app, ["--since", "all", "--history", url, "-o", str(tmp_path / "r.html")])
    assert done.exit_code != 0 and "a password is never written in the URL" in done.output, done.output
    assert "ter2" not in done.output and not (tmp_path / "r.html").exists()


def test_wrong_or_unset_password_is_a_clear_error_without_the_secret(pg_url: str, monkeypatch) -> None:
    monkeypatch.setenv("WRONG_PG_PASSWORD", "not-the-password-xyz")
    with pytest.raises(HistoryError, match=r"cannot connect to the history database .*password authentication "
                                           r"failed") as info:
        open_history(pg_url, Secret("${WRONG_PG_PASSWORD}"))
    assert "not-the-password-xyz" not in str(info.value)
    monkeypatch.delenv("UNSET_PG_PASSWORD", raising=False)
    with pytest.raises(HistoryError, match=r"credential \$\{UNSET_PG_PASSWORD\} is not set"):
        open_history(pg_url, Secret("${UNSET_PG_PASSWORD}"))


def test_password_from_a_file_reference(tmp_path: Path, pg_server, pg_url: str) -> None:
    secret = tmp_path / "pg-password"
    secret.write_text(pg_server.password + "\n# rotated 2026-11\n")
    assert len(open_history(pg_url, Secret(f"file:{secret}"))) == 0


def test_no_server_there_names_the_database_and_says_why(tmp_path: Path) -> None:
    url = f"postgresql://hilt@/hilt?host={tmp_path}"  # no server listens on this socket directory
    with pytest.raises(HistoryError, match=r"postgresql://hilt@/hilt\?host=.*: cannot connect to the history "
                                           r"database \(.*(No such file|Connection refused)"):
        open_history(url)


def test_newer_schema_on_the_server_is_refused(pg_url: str) -> None:
    import psycopg

    open_history(pg_url, REF)
    with psycopg.connect(pg_url, password=REF.resolve()) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(HistoryError, match=r"history schema version 99 is newer than this hilt supports"):
        open_history(pg_url, REF)


PROVIDER = '''\
class Provider:
    """One node whose BMC refuses connections: the run ends quickly, and still records itself."""

    def start(self, rig_name, options, workdir):
        return {"nodes": {"gpu-01": {
            "bmc": {"url": "https://127.0.0.1:9", "username": "admin", "password": "${TEAM_BMC_PASSWORD}"},
            "ssh": {"host": "127.0.0.1", "port": 9, "user": "hilt", "key": "/nonexistent/key"},
            "profile": "sim-4gpu",
        }}}

    def stop(self):
        pass
'''


def test_a_pytest_run_on_a_runner_appends_to_the_shared_postgresql_history(tmp_path: Path, pg_url: str) -> None:
    """What each CI runner does: its session ends by appending its run to rigs.yaml's PostgreSQL history."""
    import os
    import subprocess
    import sys

    (tmp_path / "state_provider.py").write_text(PROVIDER)
    (tmp_path / "test_team.py").write_text("def test_a(node):\n    pass\n")
    (tmp_path / "rigs.yaml").write_text(
        f"default_rig: lab\nlease_store: sqlite://leases.sqlite\nhistory: {pg_url}\n"
        f"history_password: ${{{PASSWORD_ENV}}}\n"
        "rigs:\n  lab:\n    suites: [test_team]\n    provider:\n      factory: state_provider:Provider\n")
    env = session_env(PYTHONPATH=str(tmp_path), TEAM_BMC_PASSWORD="x", BUILD_URL="https://ci.lab/job/n/7/")
    env.pop("HILT_NO_HISTORY", None)
    env.pop("CI_JOB_URL", None)
    env.pop("GITHUB_RUN_ID", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig", "lab", "test_team.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    runs = open_history(pg_url, REF).runs()
    assert [r.rig for r in runs] == ["lab"], (proc.stdout + proc.stderr)[-3000:]
    assert runs[0].ci_url == "https://ci.lab/job/n/7/"  # the report links each night to its CI job
    assert not (tmp_path / "reports" / "history.sqlite").exists()  # no SQLite file on the side
    state = next((tmp_path / "reports" / ".hilt").glob("*/session.json")).read_text()
    assert "${" + PASSWORD_ENV + "}" in state and os.environ[PASSWORD_ENV] not in state  # the reference only
