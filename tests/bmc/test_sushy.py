"""The full boot sequence against sushy-emulator (the simulated rack's BMC), over HTTPS with basic auth."""

from __future__ import annotations

import os

import pytest
import requests

from hilt.bmc import Bmc, BmcError
from hilt.sim.bmc_emulator import start_sushy_emulator

UUID = "5b4a2e1c-0d3f-4a61-9d57-2b8e4f1c6a10"
PASSWORD = "sushy-Secret-7"


@pytest.fixture(scope="module")
def sushy(tmp_path_factory):
    emu = start_sushy_emulator(tmp_path_factory.mktemp("sushy"),
                               [{"uuid": UUID, "name": "node0", "power_state": "Off", "nics": []}],
                               username="admin", password=PASSWORD, power_delay_s=1.0)
    yield emu
    emu.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(emu.pid, 0)


def _raw(emu, path):
    return requests.get(f"{emu.url}{path}", auth=("admin", PASSWORD), verify=str(emu.ca_path), timeout=5).json()


def test_virtual_media_boot_on_sushy(sushy, image_server):
    with Bmc(sushy.url, "admin", PASSWORD, verify=str(sushy.ca_path), name="node0", poll_interval_s=0.5) as bmc:
        assert sushy.system_ids == [UUID]
        bmc.boot_from_virtual_media(image_server)
        assert bmc.power_state() == "On"
        assert bmc.requests_sent <= 16
    system = _raw(sushy, f"/redfish/v1/Systems/{UUID}")
    assert system["Boot"]["BootSourceOverrideTarget"] == "Cd"
    cd = _raw(sushy, f"/redfish/v1/Systems/{UUID}/VirtualMedia/Cd")
    assert cd["Image"] == image_server and cd["Inserted"] is True


def test_restart_and_power_off_on_sushy(sushy):
    with Bmc(sushy.url, "admin", PASSWORD, verify=str(sushy.ca_path), poll_interval_s=0.5) as bmc:
        bmc.power_on()
        bmc.power_off()
        assert bmc.power_state() == "Off"
        bmc.boot_from_network("Pxe")
        assert bmc.power_state() == "On"
    assert _raw(sushy, f"/redfish/v1/Systems/{UUID}")["Boot"]["BootSourceOverrideTarget"] == "Pxe"


def test_tls_verified_by_default(sushy):
    bmc = Bmc(sushy.url, "admin", PASSWORD, name="node0")  # the self-signed CA is not trusted
    with pytest.raises(BmcError, match=r"node0: read service root failed \(no answer\).*SSL"):
        bmc.power_state()


def test_wrong_password_on_sushy(sushy):
    bmc = Bmc(sushy.url, "admin", "not-it-123", verify=str(sushy.ca_path), name="node0")
    with pytest.raises(BmcError, match=r"node0: .*HTTP 401") as info:
        bmc.power_state()
    assert "not-it-123" not in str(info.value)


def test_uefi_http_boot_on_sushy(sushy, image_server):
    """The simulated rack's BMC takes UefiHttp + HttpBootUri and reads them back per system."""
    with Bmc(sushy.url, "admin", PASSWORD, verify=str(sushy.ca_path), poll_interval_s=0.5) as bmc:
        bmc.boot_from_http(image_server)
        assert bmc.power_state() == "On"
    boot = _raw(sushy, f"/redfish/v1/Systems/{UUID}")["Boot"]
    assert (boot["BootSourceOverrideTarget"], boot["HttpBootUri"]) == ("UefiHttp", image_server)
