"""rigs.yaml: a good file loads; each kind of bad input is one line naming file:line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.errors import ConfigError
from hilt.rig.config import load_inventory
from hilt.rig.credentials import resolve_username
from tests.support.rigs import GOOD


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rigs.yaml"
    path.write_text(text)
    return path


def test_good_file_loads_with_resolved_paths(tmp_path, monkeypatch):
    inv = load_inventory(write(tmp_path, GOOD))
    node = inv.rig(None).nodes["gpu-01"]
    assert node.bmc.system_id == "System.Embedded.1"
    assert node.ssh.port == 22 and node.fabric_address == "10.0.1.11"
    assert inv.image("img-1.4.2")[1].identity.driver == "550.54.15"
    assert Path(inv.baselines_dir) == tmp_path / "baselines"
    monkeypatch.setenv("IDRAC_PASSWORD", "s3cret")
    assert node.bmc.password.resolve() == "s3cret"
    assert "s3cret" not in repr(node) and "s3cret" not in str(node.bmc.password)


def test_the_repository_rigs_file_is_valid():
    inv = load_inventory(Path(__file__).parents[2] / "rigs.yaml")
    assert inv.default_rig == "sim" and inv.rig("sim").provider is not None


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_inventory(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_unknown_field_names_file_line_and_the_valid_fields(tmp_path):
    message = error_of(tmp_path, GOOD.replace("      system_id:", "      sytem_id:"))
    assert message.startswith(f"{tmp_path / 'rigs.yaml'}:16: rigs.staging-a.nodes.gpu-01.bmc.sytem_id: unknown field")
    assert "valid: url, system_id" in message


def test_missing_bmc_url(tmp_path):
    message = error_of(tmp_path, GOOD.replace("          url: https://10.0.0.11\n", ""))
    assert ":14: rigs.staging-a.nodes.gpu-01.bmc.url: missing required field" in message


def test_bad_port(tmp_path):
    message = error_of(tmp_path, GOOD.replace("          user: hilt\n", "          port: 70000\n"))
    assert ":22: rigs.staging-a.nodes.gpu-01.ssh.port:" in message and "65535" in message


def test_plaintext_password_is_refused(tmp_path):
    message = error_of(tmp_path, GOOD.replace("${IDRAC_PASSWORD}", "hunter2"))
    assert ":18: rigs.staging-a.nodes.gpu-01.bmc.password:" in message and "${BMC_PASSWORD}" in message
    assert "hunter2" not in message


def test_credential_not_set_is_reported_by_rigs_check(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from hilt.cli import app

    monkeypatch.delenv("IDRAC_PASSWORD", raising=False)
    monkeypatch.setenv("IDRAC_USER", "root")
    result = CliRunner().invoke(app, ["rigs", "check", str(write(tmp_path, GOOD))])
    assert result.exit_code == 4
    out = " ".join(result.output.split())
    assert "rigs.yaml:18: rigs.staging-a.nodes.gpu-01.bmc.password: credential ${IDRAC_PASSWORD} is not set" in out
    monkeypatch.setenv("IDRAC_PASSWORD", "x")
    ca = tmp_path / "bmc-ca.pem"
    ca.write_text("a CA bundle\n")
    write(tmp_path, GOOD.replace("/etc/hilt/bmc-ca.pem", str(ca)))
    ok = CliRunner().invoke(app, ["rigs", "check", str(tmp_path / "rigs.yaml")])
    assert ok.exit_code == 0 and "OK (1 rigs, 1 nodes, 1 images)" in " ".join(ok.output.split())


def test_unknown_rig_and_image_list_the_known_ones(tmp_path):
    inv = load_inventory(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="unknown rig 'staging-b'; known rigs: staging-a"):
        inv.rig("staging-b")
    with pytest.raises(ConfigError, match="known images: img-1.4.2, or a URL"):
        inv.image("img-9")
    assert inv.image("https://x.example/a.iso")[0] == "a.iso"


def test_hostile_user_name_is_rejected(tmp_path):
    message = error_of(tmp_path, GOOD.replace("user: hilt", "user: 'x;$(touch /tmp/pwned)'"))
    assert "ssh.user" in message and "POSIX user name" in message


def test_file_credential_and_literal_username(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    text = GOOD.replace("${IDRAC_PASSWORD}", f"file:{secret}").replace("${IDRAC_USER}", "admin")
    node = load_inventory(write(tmp_path, text)).rig(None).nodes["gpu-01"]
    assert node.bmc.password.resolve() == "from-file"
    assert resolve_username(node.bmc.username) == "admin"


def test_invalid_yaml_names_the_line(tmp_path):
    message = error_of(tmp_path, "rigs:\n  a: [unclosed\n")
    assert "rigs.yaml:" in message and "not valid YAML" in message


def test_hostile_host_is_rejected(tmp_path):
    message = error_of(tmp_path, GOOD.replace("host: 10.0.1.11", "host: '$(reboot)'"))
    assert "ssh.host" in message and "host name or an IP address" in message


def test_image_identity_declares_compatible_firmware(tmp_path):
    """An image's identity may carry its driver build's firmware matrix (docs/trust.md); strict like the rest."""
    declared = GOOD.replace("driver: 550.54.15}", "driver: 550.54.15, firmware: {vbios: [96.00.99.00.01]}}")
    firmware = load_inventory(write(tmp_path, declared)).image("img-1.4.2")[1].identity.firmware
    assert firmware.vbios == ["96.00.99.00.01"] and firmware.inforom is None
    message = error_of(tmp_path, GOOD.replace("driver: 550.54.15}", "driver: 550.54.15, firmware: {vbois: [1]}}"))
    assert ":7: images.img-1.4.2.identity.firmware.vbois: unknown field" in message and "vbios" in message
