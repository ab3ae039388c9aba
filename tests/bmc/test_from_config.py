"""``Bmc.from_config``: the one way to build a BMC client from a node's rigs.yaml entry."""

from __future__ import annotations

import pytest

from hilt.bmc import Bmc
from hilt.errors import ConfigError
from hilt.rig.config import BmcConfig, NodeConfig
from testkit.redfish_peer import start_peer


def _node(url: str, password_ref: str, **bmc) -> NodeConfig:
    return NodeConfig(bmc=BmcConfig(url=url, username="admin", password=password_ref, **bmc),
                      ssh={"host": "127.0.0.1"}, profile="p")


def test_from_config_resolves_the_reference_at_use(monkeypatch):
    peer = start_peer()
    try:
        monkeypatch.setenv("HILT_TEST_BMC_PW", "peer-pw")
        node = _node(peer.url, "${HILT_TEST_BMC_PW}", system_id="437XR1138R2", auth="session")
        with Bmc.from_config(node, name="node-a", poll_interval_s=0.01) as bmc:
            assert bmc.name == "node-a" and bmc.system_id == "437XR1138R2" and bmc.poll_interval_s == 0.01
            assert bmc.power_state() == "Off"
        assert peer.count("POST", "/SessionService/Sessions") == 1  # auth from the config: a session
        with Bmc.from_config(node.bmc, name="node-a") as bmc:  # a BmcConfig works as well
            monkeypatch.setenv("HILT_TEST_BMC_PW", "changed")
            assert bmc.power_state() == "Off"  # resolved once, when the client was built
    finally:
        peer.stop()


def test_from_config_with_unset_reference_is_a_config_error(monkeypatch):
    monkeypatch.delenv("HILT_TEST_BMC_PW", raising=False)
    with pytest.raises(ConfigError, match=r"HILT_TEST_BMC_PW"):
        Bmc.from_config(_node("https://10.0.0.1", "${HILT_TEST_BMC_PW}"))
