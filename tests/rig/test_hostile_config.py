"""Issue 20 items 4, 9, 10: TLS verification, `file:` credentials and pinned host keys in rigs.yaml.

Each bad value is refused when the file is loaded, as one line naming the file, the line and the field; turning
TLS verification off is allowed only as an explicit `verify: false`, and `hilt rigs check` shows it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hilt.errors import ConfigError
from hilt.exitcodes import ExitCode
from hilt.rig.config import load_inventory
from tests.support.rigs import GOOD

VERIFY_LINE = "          verify: /etc/hilt/bmc-ca.pem\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFXf92quncSueRSAKIeX0svlF2Ub7Hg9npxpKkcZhcnr"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rigs.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_inventory(write(tmp_path, text))
    assert "\n" not in str(info.value)
    return str(info.value)


def rigs_check(path: Path, monkeypatch) -> tuple[int, str]:
    from hilt.cli import app

    monkeypatch.setenv("IDRAC_USER", "root")
    monkeypatch.setenv("IDRAC_PASSWORD", "x")
    result = CliRunner().invoke(app, ["rigs", "check", str(path)], env={"COLUMNS": "300"})
    return result.exit_code, " ".join(result.output.split())


# ---------------------------------------------------------------- item 4: verify


@pytest.mark.parametrize("value", ['""', "''", '"  "', '"false"', '"no"', "0", "null"])
def test_verify_that_is_not_an_explicit_boolean_or_a_path_is_refused(tmp_path, value):
    message = error_of(tmp_path, GOOD.replace(VERIFY_LINE, f"          verify: {value}\n"))
    assert ":19: rigs.staging-a.nodes.gpu-01.bmc.verify:" in message
    assert "true" in message and "false" in message


def test_verify_false_is_allowed_and_rigs_check_warns(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD.replace(VERIFY_LINE, "          verify: false\n"))
    assert load_inventory(path).rig(None).nodes["gpu-01"].bmc.verify is False
    code, out = rigs_check(path, monkeypatch)
    assert code == 0, out
    assert "warning: " in out and "rigs.yaml:19: rigs.staging-a.nodes.gpu-01.bmc.verify: TLS verification is off" in out
    assert "OK (1 rigs" in out


def test_a_missing_ca_bundle_fails_rigs_check(tmp_path, monkeypatch):
    code, out = rigs_check(write(tmp_path, GOOD.replace("/etc/hilt/bmc-ca.pem", str(tmp_path / "nope.pem"))),
                           monkeypatch)
    assert code == ExitCode.USAGE_ERROR
    field = "rigs.staging-a.nodes.gpu-01.bmc.verify"
    assert f"rigs.yaml:19: {field}: CA bundle {tmp_path / 'nope.pem'} is not a readable file" in out


def test_a_readable_ca_bundle_and_the_default_pass_without_warning(tmp_path, monkeypatch):
    ca = tmp_path / "ca.pem"
    ca.write_text("bundle\n")
    code, out = rigs_check(write(tmp_path, GOOD.replace("/etc/hilt/bmc-ca.pem", str(ca))), monkeypatch)
    assert code == 0 and "warning" not in out, out
    code, out = rigs_check(write(tmp_path, GOOD.replace(VERIFY_LINE, "")), monkeypatch)
    assert code == 0 and "warning" not in out, out


def test_relative_paths_are_read_next_to_the_rigs_file_not_in_the_cwd(tmp_path, monkeypatch):
    """docs/rigs.md: relative paths are relative to the rigs file. A CI job runs `hilt rigs check ci/rigs.yaml`
    from the repository root; its CA bundle, key, known_hosts and password file sit next to the file."""
    site = tmp_path / "ci"
    site.mkdir()
    for name in ("bmc-ca.pem", "id_hilt", "known_hosts", "bmc-password"):
        (site / name).write_text("x\n")
    text = (GOOD.replace("/etc/hilt/bmc-ca.pem", "bmc-ca.pem").replace("~/.ssh/hilt_ed25519", "id_hilt")
            .replace("${IDRAC_PASSWORD}", "file:bmc-password")
            .replace("          user: hilt\n", "          user: hilt\n          known_hosts: known_hosts\n"))
    path = write(site, text)
    monkeypatch.chdir(tmp_path)  # the repository root, not ci/
    node = load_inventory(Path("ci/rigs.yaml")).rig(None).nodes["gpu-01"]
    assert (node.bmc.verify, node.ssh.key, node.ssh.known_hosts) == (
        str(site / "bmc-ca.pem"), str(site / "id_hilt"), str(site / "known_hosts"))
    assert node.bmc.password.resolve() == "x"
    code, out = rigs_check(Path("ci/rigs.yaml"), monkeypatch)
    assert code == 0 and "not a readable file" not in out, out
    assert path.is_file()


# ---------------------------------------------------------------- item 9: file: credentials


@pytest.mark.parametrize("content, expected", [
    ("s3cret\n", "s3cret"),
    ("s3cret", "s3cret"),
    ("s3cret\r\n", "s3cret"),
    ("s3cret\n# rotated 2026-03, old: hunter2\n", "s3cret"),
    ("  padded secret  \nsecond\n", "  padded secret  "),  # the line as written: spaces may be part of it
])
def test_file_credential_is_its_first_line(tmp_path, content, expected):
    secret = tmp_path / "pw"
    secret.write_text(content)
    node = load_inventory(write(tmp_path, GOOD.replace("${IDRAC_PASSWORD}", f"file:{secret}"))).rig(None)
    assert node.nodes["gpu-01"].bmc.password.resolve() == expected


@pytest.mark.parametrize("content, problem", [
    (b"\nsecret-on-line-2\n", "its first line is empty"),
    (b"", "its first line is empty"),
    (b"\xff\xfe\n", "not UTF-8"),
])
def test_unusable_file_credentials_are_named_never_shown(tmp_path, content, problem):
    secret = tmp_path / "pw"
    secret.write_bytes(content)
    inv = load_inventory(write(tmp_path, GOOD.replace("${IDRAC_PASSWORD}", f"file:{secret}")))
    with pytest.raises(ConfigError) as info:
        inv.rig(None).nodes["gpu-01"].bmc.password.resolve()
    assert problem in str(info.value) and f"file:{secret}" in str(info.value)
    assert "secret-on-line-2" not in str(info.value)


# ---------------------------------------------------------------- item 10: pinned host keys


@pytest.mark.parametrize("key, problem", [
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3", "truncated"),          # cut short
    ("ssh-ed25519 AAAA!!not-base64", "not valid base64"),
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFXf92quncSueRSAKIeX0svlF2Ub7Hg9npxpKkcZhc", "not valid base64"),
    (KEY.replace("ssh-ed25519", "ssh-rsa"), "not a ssh-rsa key"),      # the type says one thing, the data another
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "is not one of"),
    ("AAAAC3NzaC1lZDI1NTE5AAAAIFXf92quncSueRSAKIeX0svlF2Ub7Hg9npxpKkcZhcnr", "not 'TYPE BASE64'"),
])
def test_a_garbage_pinned_host_key_is_a_config_error_at_load(tmp_path, key, problem):
    message = error_of(tmp_path, GOOD.replace(KEY, key))
    assert ":24: rigs.staging-a.nodes.gpu-01.ssh.host_key:" in message and problem in message


def test_real_host_keys_of_every_type_load(tmp_path):
    import subprocess

    for kind in ("ed25519", "rsa", "ecdsa"):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(tmp_path / kind)], check=True)
        public = (tmp_path / f"{kind}.pub").read_text().strip()
        node = load_inventory(write(tmp_path, GOOD.replace(KEY, public))).rig(None).nodes["gpu-01"]
        assert node.ssh.host_key == public


@pytest.mark.parametrize("password", ["hunter/2", "a/b?c#d", "hunter%2F2", "hunter2"],
                         ids=["slash", "slash-query-fragment", "percent-encoded", "plain"])
def test_a_history_password_in_the_url_is_refused_at_load_and_never_shown(tmp_path, password):
    """A password holding "/" is no password to urlsplit (or libpq): "postgresql://hilt:hunter/2@db.lab/hilt"
    reads as host "hilt", port "hunter". Before: the file loaded, and the run's history append failed later with
    "cannot connect ... failed to resolve host 'hilt'" and the URL, password and all, in the message. Now: refused
    at load, naming the file, the line, the field and what to write instead, without the password."""
    url = f"postgresql://hilt:{password}@db.lab/hilt"
    message = error_of(tmp_path, GOOD.replace("default_rig: staging-a\n", f"default_rig: staging-a\nhistory: {url}\n"))
    assert message.startswith(f"{tmp_path / 'rigs.yaml'}:2: history: a password is never written in the URL"), message
    assert "postgresql://[user@]host[:port]/database" in message and "history_password: ${ENV_VAR}" in message
    assert "hunter" not in message and "a/b" not in message


def test_a_history_url_without_a_password_still_loads(tmp_path):
    """The check does not take an "@" or ":" elsewhere for a password: a user, a port, a socket directory."""
    for url in ("postgresql://hilt@db.lab:5433/hilt", "postgresql://db.lab/hilt",
                "postgresql://hilt@/hilt?host=/run/postgresql"):
        text = GOOD.replace("default_rig: staging-a\n", f"default_rig: staging-a\nhistory: {url}\n")
        assert load_inventory(write(tmp_path, text)).history == url
