"""A hostile value in rigs.yaml (or from a rig provider) never reaches a shell: the schema refuses it first.

No sim needed: the session stops at the inventory, before any SSH or BMC traffic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.errors import ConfigError
from hilt.session.rig_session import RigSession

MARKER = "/tmp/hilt-provision-hostile-marker"  # noqa: S108 - what a hostile value would create
HOSTILE = [f"root;touch {MARKER}", f"$(touch {MARKER})", f"`touch {MARKER}`"]

RIGS = """\
default_rig: r
lease_store: sqlite://leases.sqlite
images:
  good: {{url: "http://127.0.0.1:9/good.tar", boot_timeout_s: 5}}
rigs:
  r:
    default_image: good
    nodes:
      n1:
        bmc: {{url: "https://127.0.0.1:9", username: admin, password: "${{BMC_PASSWORD}}"}}
        ssh: {{host: 127.0.0.1, user: {user}}}
        profile: sim-4gpu
"""


class HostileProvider:
    """A rig provider whose node carries a hostile SSH user (as a compromised or buggy provider might)."""

    user = HOSTILE[1]

    def start(self, rig_name: str, options: dict, workdir: Path) -> dict:
        return {"nodes": {"p1": {
            "bmc": {"url": "https://127.0.0.1:9", "username": "admin", "password": "${BMC_PASSWORD}"},
            "ssh": {"host": "127.0.0.1", "user": self.user}, "profile": "sim-4gpu"}}}

    def stop(self) -> None:
        pass


def start_session(tmp_path: Path, rigs_text: str) -> RigSession:
    rigs = tmp_path / "rigs.yaml"
    rigs.write_text(rigs_text)
    session = RigSession(rigs, None, None, boot=True, reports_dir=tmp_path / "reports")
    try:
        session.start()
    finally:
        session.finish()
    return session


@pytest.mark.parametrize("user", HOSTILE)
def test_hostile_ssh_user_in_rigs_yaml_is_rejected_naming_the_field(tmp_path, user):
    quoted = "'" + user.replace("'", "''") + "'"
    with pytest.raises(ConfigError) as info:
        start_session(tmp_path, RIGS.format(user=quoted))
    message = str(info.value)
    assert f"{tmp_path / 'rigs.yaml'}:11: rigs.r.nodes.n1.ssh.user:" in message
    assert "POSIX user name" in message
    assert not Path(MARKER).exists()


def test_hostile_ssh_user_from_a_provider_is_rejected_naming_the_field(tmp_path):
    rigs = RIGS.format(user="root").replace(
        "    nodes:\n", '    provider: {factory: "tests.provision.test_hostile:HostileProvider"}\n    nodes:\n')
    with pytest.raises(ConfigError) as info:
        start_session(tmp_path, rigs)
    message = str(info.value)
    assert "from its provider is invalid" in message and "rigs.r.nodes.p1.ssh.user" in message
    assert "POSIX user name" in message
    assert not Path(MARKER).exists()
