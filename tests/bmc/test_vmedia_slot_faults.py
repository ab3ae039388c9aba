"""A virtual-media slot that answers InsertMedia with a bare HTTP 500 (issue 24 item 8): one vendor's firmware does
this on one of its CD slots while the other takes the image. A real sushy-emulator with two CD slots serves the
Redfish service; tests/bmc/fault_proxy.py, in front of it, gives the one answer the emulator cannot."""

from __future__ import annotations

import socket
import textwrap

import pytest
import requests

from hilt.bmc import Bmc, BmcError
from hilt.provision.boot import provision
from hilt.rig.config import parse_inventory
from hilt.sim.bmc_emulator import start_sushy_emulator
from tests.bmc.fault_proxy import Rule, start_fault_proxy

UUID = "0c7f4a55-2d1e-4c3b-9a8e-6f5d4c3b2a19"
PASSWORD = "sushy-Slots-9"
CD = {"Name": "Virtual CD", "MediaTypes": ["CD", "DVD"]}
VMEDIA = f"/redfish/v1/Systems/{UUID}/VirtualMedia"
INSERT = "/Actions/VirtualMedia.InsertMedia"
BARE_500 = Rule("POST", f"/VirtualMedia/Cd{INSERT}", 500)  # no body at all, as that firmware answers


@pytest.fixture
def sushy(tmp_path):
    emu = start_sushy_emulator(tmp_path / "sushy", [{"uuid": UUID, "name": "node0", "power_state": "Off",
                                                      "nics": []}],
                               username="admin", password=PASSWORD, power_delay_s=0.2,
                               vmedia_devices={"Cd": CD, "Cd2": CD})
    yield emu
    emu.stop()


@pytest.fixture
def proxy_for(sushy):
    started = []

    def start(*rules: Rule):
        proxy = start_fault_proxy(sushy.url, sushy.ca_path, list(rules))
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def _raw(emu, path):
    return requests.get(f"{emu.url}{path}", auth=("admin", PASSWORD), verify=str(emu.ca_path), timeout=5).json()


def _bmc(proxy) -> Bmc:
    return Bmc(proxy.url, "admin", PASSWORD, name="node0", poll_interval_s=0.2, backoff_s=0.05)


def test_the_emulator_lists_two_cd_slots_and_hilt_tries_cd_first(sushy, proxy_for, image_server):
    """The premise: without a fault the first slot tried, Cd, takes the image."""
    assert [m["@odata.id"] for m in _raw(sushy, VMEDIA)["Members"]] == [f"{VMEDIA}/Cd", f"{VMEDIA}/Cd2"]
    proxy = proxy_for()
    with _bmc(proxy) as bmc:
        assert bmc.boot_from_virtual_media(image_server) == []
    assert _raw(sushy, f"{VMEDIA}/Cd")["Image"] == image_server


def test_a_bare_500_from_one_slot_sends_the_image_to_the_next(sushy, proxy_for, image_server):
    proxy = proxy_for(BARE_500)
    with _bmc(proxy) as bmc:
        notes = bmc.boot_from_virtual_media(image_server)
        assert bmc.power_state() == "On"
    assert proxy.answered == [("POST", f"{VMEDIA}/Cd{INSERT}", 500)]
    assert notes == [f"refused: {VMEDIA}/Cd: insert virtual media answered HTTP 500 with no Redfish error body: "
                     "that slot's refusal", f"inserted in {VMEDIA}/Cd2"]
    cd2 = _raw(sushy, f"{VMEDIA}/Cd2")
    assert (cd2["Image"], cd2["Inserted"]) == (image_server, True)
    assert _raw(sushy, f"/redfish/v1/Systems/{UUID}")["Boot"]["BootSourceOverrideTarget"] == "Cd"


def test_the_boot_evidence_says_which_slot_refused_and_which_took_the_image(sushy, proxy_for, image_server,
                                                                             monkeypatch):
    """Through rigs.yaml and provision(), as a run boots a node: the host never answers SSH here (nothing listens),
    so the boot fails after the insert, and its evidence names the slot that refused and the one that took it."""
    proxy = proxy_for(BARE_500)
    monkeypatch.setenv("LAB_BMC_PASSWORD", PASSWORD)
    with socket.socket() as s:  # a port nothing listens on: the node's OS never comes up
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    inventory = parse_inventory(textwrap.dedent(f"""\
        default_rig: lab
        images:
          candidate: {{url: "{image_server}", boot_timeout_s: 1.5}}
        rigs:
          lab:
            nodes:
              node0:
                bmc: {{url: "{proxy.url}", username: admin, password: "${{LAB_BMC_PASSWORD}}"}}
                ssh: {{host: 127.0.0.1, port: {closed}, user: hilt}}
                profile: sim-4gpu
        """))
    name, image = inventory.image("candidate")
    result = provision(inventory.rig("lab").nodes, name, image)["node0"]
    assert not result.ok and "SSH never answered" in (result.error or result.evidence.get("ssh_error", ""))
    assert result.evidence["virtual_media"] == [
        f"refused: {VMEDIA}/Cd: insert virtual media answered HTTP 500 with no Redfish error body: that slot's "
        "refusal", f"inserted in {VMEDIA}/Cd2"]
    booting = [s for s in result.evidence["steps"] if s["state"] == "booting"]
    assert len(booting) == 1 and f"inserted in {VMEDIA}/Cd2" in booting[0]["detail"]


def test_every_slot_answering_a_bare_500_fails_before_any_reset(sushy, proxy_for, image_server):
    proxy = proxy_for(BARE_500, Rule("POST", f"/VirtualMedia/Cd2{INSERT}", 500))
    with _bmc(proxy) as bmc, pytest.raises(BmcError, match=r"every virtual CD refused the image: .*/Cd: .*HTTP 500"
                                           r".* \| .*/Cd2: .*HTTP 500.*no reset was sent"):
        bmc.boot_from_virtual_media(image_server)
    assert _raw(sushy, f"/redfish/v1/Systems/{UUID}")["PowerState"] == "Off"


def test_a_500_with_a_redfish_error_is_the_bmcs_failure_not_the_slots(sushy, proxy_for, image_server):
    """A 5xx that says what went wrong is about the BMC: the boot fails with its words, no other slot is tried."""
    body = (b'{"error": {"code": "Base.1.8.GeneralError", "message": "An internal error occurred.", '
            b'"@Message.ExtendedInfo": [{"MessageId": "Base.1.8.InternalError", '
            b'"Message": "The request failed due to an internal service error."}]}}')
    proxy = proxy_for(Rule("POST", f"/VirtualMedia/Cd{INSERT}", 500, body, "application/json"))
    with _bmc(proxy) as bmc, pytest.raises(BmcError, match=r"insert virtual media failed \(HTTP 500\): "
                                           r"The request failed due to an internal service error"):
        bmc.boot_from_virtual_media(image_server)
    assert not [f for f in proxy.forwarded if f[0] == "POST" and f[1].endswith(INSERT)]
