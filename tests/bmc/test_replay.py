"""The BMC layer against ten captured vendor trees served by the replay peer (tests/bmc/replay), each applying
writes the way its firmware does (testkit/redfish_replay/behaviour.py, tests/data/redfish-captures/BEHAVIOUR.md)."""

from __future__ import annotations

import pytest

from hilt.bmc import BmcError
from testkit.redfish_replay.behaviour import BEHAVIOURS
from testkit.redfish_replay.journey import IMAGE, _bmc, run_journey
from testkit.redfish_replay.server import TREES, Faults, start_replay


@pytest.fixture
def replay():
    started = []

    def make(tree: str, faults: Faults | None = None, **kw):
        r = start_replay(tree, faults, **kw)
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


def _resets_during_vmedia(rp) -> list[str]:
    return rp.state.resets[:-1]  # the last reset is the journey's PXE boot


@pytest.mark.parametrize("tree", TREES)
def test_journey_on_every_captured_tree(replay, tree):
    rp = replay(tree)
    r = run_journey(rp, tree)
    st = rp.state
    if BEHAVIOURS[tree].vmedia:
        assert r.result == "ok", r.vmedia_error
        assert st.booted[0] == (st.booted[0][0], IMAGE)  # the host booted the image from a virtual CD
        assert st.booted[0][0] in ("Cd", "UsbCd")
    else:
        # A clear error, before any write: no PATCH, no insert, no reset of the host.
        assert r.result == "no virtual media"
        assert "offers no virtual CD" in r.vmedia_error and "no reset was sent" in r.vmedia_error
        assert _resets_during_vmedia(rp) == [] and not st.inserts
        assert not [p for p in st.patches if p[1].get("BootSourceOverrideTarget") != "Pxe"]
    assert st.booted[-1] == ("Pxe", None)  # the network boot took
    assert r.power_state in ("On", "Off")
    assert r.inventory["bmc_firmware"]
    assert not st.sessions  # every session logged out
    assert r.vmedia_requests <= 15


def test_several_cd_slots_boot_from_the_documented_one(replay):
    """GB300 lists USB2, USB1, Slot_0; the host boots USB1: insert there, not in the first listed."""
    rp = replay("supermicro-gb300-bmcweb")
    run_journey(rp, "supermicro-gb300-bmcweb")
    assert [p.rsplit("/", 1)[-1] for p, _ in rp.state.inserts] == ["USB1"]
    assert rp.state.booted[0] == ("Cd", IMAGE)


def test_slot_refusing_the_image_sends_us_to_the_next(replay):
    rp = replay("supermicro-gb300-bmcweb", Faults(refuse_slot="USB1"))
    with _bmc(rp, "gb300") as bmc:
        bmc.boot_from_virtual_media(IMAGE)
    assert [p.rsplit("/", 1)[-1] for p, _ in rp.state.inserts] == ["USB1", "USB2"]
    assert rp.state.booted == [("Cd", IMAGE)]


def test_every_slot_refusing_is_an_error_without_reset(replay):
    rp = replay("dell-idrac10", Faults(refuse_slot="1"))
    rp.state.tree["/redfish/v1/Systems/System.Embedded.1/VirtualMedia/2"]["MediaTypes"] = ["USBStick"]
    with _bmc(rp, "idrac") as bmc, pytest.raises(BmcError, match=r"every virtual CD refused the image.*"
                                                 r"in use by another session.*no reset was sent"):
        bmc.boot_from_virtual_media(IMAGE)
    assert rp.state.resets == [] and rp.state.patches == []


def test_supermicro_mode_is_sent_with_every_override(replay):
    """X13 resets BootSourceOverrideMode to Legacy unless it is sent along (DMTF/Redfishtool#106)."""
    rp = replay("supermicro-x13")
    with _bmc(rp, "x13") as bmc:
        bmc.boot_from_virtual_media(IMAGE)
    assert rp.state.patches[0][1] == {"BootSourceOverrideTarget": "UsbCd", "BootSourceOverrideEnabled": "Once",
                                      "BootSourceOverrideMode": "UEFI"}
    assert rp.state.tree["/redfish/v1/Systems/1"]["Boot"]["BootSourceOverrideMode"] == "UEFI"


@pytest.mark.parametrize("tree", ["hpe-ilo6-dl380a", "dell-idrac10"])
def test_firmware_that_rejects_the_mode_never_gets_it(replay, tree):
    """iLO and iDRAC refuse a boot PATCH carrying BootSourceOverrideMode (community.general#3509, #5091)."""
    rp = replay(tree)
    with _bmc(rp, tree) as bmc:
        bmc.boot_from_virtual_media(IMAGE)
    assert len(rp.state.patches) == 1 and "BootSourceOverrideMode" not in rp.state.patches[0][1]


def test_mode_silently_reset_is_caught_by_the_read_back_before_any_reset(replay):
    """The X13 rule: a PATCH whose mode the BMC dropped falls back to Legacy; the read-back catches it."""
    rp = replay("supermicro-x13", Faults(drop_field="BootSourceOverrideMode"))
    with _bmc(rp, "x13") as bmc, pytest.raises(
            BmcError, match=r"did not keep it: BootSourceOverrideMode reads 'Legacy', sent 'UEFI' \(no reset"):
        bmc.boot_from_virtual_media(IMAGE)
    assert rp.state.resets == []


def test_silently_dropped_target_is_caught_by_the_read_back(replay):
    rp = replay("hpe-ilo5-dl325", Faults(drop_field="BootSourceOverrideTarget"))
    with _bmc(rp, "ilo5") as bmc, pytest.raises(BmcError, match=r"BootSourceOverrideTarget reads 'None', sent 'Cd'"):
        bmc.boot_from_virtual_media(IMAGE)
    assert rp.state.resets == []


def test_present_but_not_inserted_media_is_not_ejected(replay):
    """X13 keeps Image after an eject with Inserted false (community.general#6969); it refuses an eject then."""
    rp = replay("supermicro-x13")
    cd = rp.state.tree["/redfish/v1/Managers/1/VirtualMedia/CD1"]
    assert cd["Image"] and cd["Inserted"] is False  # as captured (reconstructed from the thread)
    with _bmc(rp, "x13") as bmc:
        bmc.boot_from_virtual_media(IMAGE)
    assert rp.state.ejects == [] and cd["Image"] == IMAGE and cd["Inserted"] is True


def test_image_none_string_counts_as_empty_and_inserted_media_is_ejected(replay):
    rp = replay("ami-gigabyte-h262")
    cd = rp.state.tree["/redfish/v1/Managers/Self/VirtualMedia/CD1"]
    cd.pop("Inserted")
    cd["Image"] = "None"
    with _bmc(rp, "ami") as bmc:
        bmc.boot_from_virtual_media(IMAGE)
    assert rp.state.ejects == []
    rp2 = replay("supermicro-x13")
    rp2.state.tree["/redfish/v1/Managers/1/VirtualMedia/CD1"]["Inserted"] = True
    with _bmc(rp2, "x13") as bmc:
        bmc.boot_from_virtual_media(IMAGE)
    assert rp2.state.ejects == ["/redfish/v1/Managers/1/VirtualMedia/CD1"]


def test_503_with_http_date_retry_after_on_every_request_login_and_logout_included(replay):
    rp = replay("dell-idrac10", Faults(busy=1))
    with _bmc(rp, "idrac", retries=2) as bmc:
        assert bmc.power_state() == "Off"
    seen = rp.state.requests
    for req in [("GET", "/redfish/v1"), ("POST", "/redfish/v1/SessionService/Sessions"),
                ("GET", "/redfish/v1/Systems/System.Embedded.1")]:
        assert seen.count(req) == 2, req  # the 503 (Retry-After: an HTTP date), then the answer
    logout = [r for r in seen if r[0] == "DELETE"]
    assert len(logout) == 2 and not rp.state.sessions  # logout retried too, and it took


def test_not_ready_login_is_retried(replay):
    rp = replay("openbmc-bmcweb-stock", Faults(not_ready=2))
    with _bmc(rp, "obmc") as bmc:
        assert bmc.power_state() == "Off"
    assert rp.state.requests.count(("POST", "/redfish/v1/SessionService/Sessions")) == 3


def test_two_systems_without_system_id_names_them_and_resets_nothing(replay):
    rp = replay("supermicro-gb300-bmcweb")
    with _bmc(rp, "gb300", system_id=None) as bmc, pytest.raises(
            BmcError, match=r"2 systems \(System_0, HGX_Baseboard_0\); set bmc.system_id in rigs.yaml"):
        bmc.boot_from_virtual_media(IMAGE)
    assert rp.state.resets == [] and rp.state.inserts == []


def test_unknown_system_id_says_which_exist(replay):
    rp = replay("supermicro-gb300-bmcweb")
    with _bmc(rp, "gb300", system_id="System_1") as bmc, pytest.raises(
            BmcError, match=r"'System_1' is not on this BMC; it has: System_0, HGX_Baseboard_0"):
        bmc.power_state()


def test_system_id_picks_the_gpu_baseboard(replay):
    rp = replay("supermicro-gb300-bmcweb")
    with _bmc(rp, "gb300", system_id="HGX_Baseboard_0") as bmc:
        assert bmc.inventory().manufacturer == "NVIDIA"


def test_uefi_http_boot_where_not_offered_is_a_clear_error_before_any_write(replay):
    rp = replay("supermicro-x13")  # lists UefiHttp, but has no Boot.HttpBootUri
    with _bmc(rp, "x13") as bmc, pytest.raises(BmcError, match="no Boot.HttpBootUri"):
        bmc.boot_from_http("http://127.0.0.1:9/boot.efi")
    rp2 = replay("openbmc-bmcweb-stock")  # does not list UefiHttp at all
    with _bmc(rp2, "obmc") as bmc, pytest.raises(BmcError, match="does not offer UefiHttp"):
        bmc.boot_from_http("http://127.0.0.1:9/boot.efi")
    assert rp.state.patches == rp2.state.patches == [] and rp.state.resets == rp2.state.resets == []


def test_uefi_http_boot_where_offered_reads_back_the_uri(replay):
    rp = replay("ami-gigabyte-h262")
    rp.state.tree["/redfish/v1/Systems/Self"]["Boot"]["HttpBootUri"] = None  # as firmware that offers it shows
    with _bmc(rp, "ami") as bmc:
        bmc.boot_from_http("http://127.0.0.1:9/boot.efi")
    assert rp.state.patches[0][1]["BootSourceOverrideMode"] == "UEFI"  # Legacy before: the mode must change
    assert rp.state.booted == [("UefiHttp", "http://127.0.0.1:9/boot.efi")]


def test_journey_over_https_with_the_ca_verified(replay, tmp_path):
    from hilt.sim.bmc_emulator import self_signed_cert

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    self_signed_cert(cert, key)
    rp = replay("hpe-ilo7-dl360g12", tls=(cert, key))
    assert rp.url.startswith("https://")
    assert run_journey(rp, "ilo7", verify=str(cert)).result == "ok"
    with _bmc(rp, "ilo7") as bmc, pytest.raises(BmcError, match="SSL"):  # system CAs: not trusted
        bmc.power_state()


def test_reset_types_from_action_info_read_only_when_a_reset_is_refused(replay):
    rp = replay("ami-gigabyte-h262")  # ResetActionInfo: GracefulShutdown, ForceRestart, ForceOff, On
    with _bmc(rp, "ami") as bmc:
        bmc.restart()
    assert rp.state.resets == ["ForceRestart"]
    assert ("GET", "/redfish/v1/Systems/Self/ResetActionInfo") not in rp.state.requests
    info = rp.state.tree["/redfish/v1/Systems/Self/ResetActionInfo"]
    info["Parameters"][0]["AllowableValues"] = ["On", "ForceOff"]  # no restart of any kind: off, then on
    with _bmc(rp, "ami") as bmc:
        bmc.restart()
    assert rp.state.resets == ["ForceRestart", "ForceOff", "On"]
    assert rp.state.requests.count(("GET", "/redfish/v1/Systems/Self/ResetActionInfo")) == 1
