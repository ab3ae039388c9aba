"""One test per BMC quirk, against our Redfish peer speaking real HTTP (testkit/redfish_peer.py)."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from hilt.bmc import Bmc, BmcError, BootMedia, PowerControl
from testkit.redfish_peer import IMAGE, MGR, SYS


def _cd(peer, base=SYS):
    return peer.state.tree[f"{base}/VirtualMedia/CD1"]


def _booted(peer, target="Cd"):
    boot = peer.state.tree[SYS]["Boot"]
    assert boot["BootSourceOverrideTarget"] == target
    assert boot["BootSourceOverrideEnabled"] == "Once"
    assert peer.state.tree[SYS]["PowerState"] == "On"


def test_plain_boot_sequence_uses_session_and_logs_out(peer_factory):
    peer, bmc = peer_factory()
    assert isinstance(bmc, PowerControl) and isinstance(bmc, BootMedia)
    bmc.boot_from_virtual_media(IMAGE)
    assert _cd(peer)["Image"] == IMAGE and _cd(peer)["Inserted"] is True
    _booted(peer)
    # The sample CD holds an image already: it was ejected first, with a JSON body.
    ejects = peer.sent("POST", "CD1/Actions/VirtualMedia.EjectMedia")
    assert len(ejects) == 1 and ejects[0].body == {}
    insert = peer.sent("POST", "InsertMedia")[-1].body
    assert insert == {"Image": IMAGE}  # Inserted/WriteProtected left out: defaults
    bmc.close()
    assert peer.count("DELETE", "/Sessions/") == 1 and not peer.state.sessions
    assert all("X-Auth-Token" in r.headers for r in peer.state.requests[2:-1])


def test_session_only_auth(peer_factory):
    peer, bmc = peer_factory("session-only")
    assert bmc.power_state() == "Off"
    assert peer.count("POST", "/Sessions") == 1


def test_basic_auth_when_asked(peer_factory):
    peer, bmc = peer_factory(auth="basic")
    assert bmc.power_state() == "Off"
    assert peer.count("POST", "/Sessions") == 0
    assert peer.state.requests[-1].headers["Authorization"].startswith("Basic ")


def test_expired_session_relogs_once(peer_factory):
    peer, bmc = peer_factory("session-expires")
    assert bmc.power_state() == "Off"
    assert bmc.power_state() == "Off"  # the first token died: a second login, then the same answer
    assert peer.count("POST", "/Sessions") == 2


def test_wrong_password_is_an_error_naming_the_step(peer_factory):
    peer, _ = peer_factory()
    bmc = Bmc(peer.url, "admin", "wrong-pw-123", auth="session", name="node-a")
    with pytest.raises(BmcError, match=r"node-a: log in .*HTTP 401"):
        bmc.power_state()


def test_etag_weak_made_strong(peer_factory):
    peer, bmc = peer_factory("etag")
    bmc.boot_from_virtual_media(IMAGE)
    _booted(peer)
    tags = [r.headers.get("If-Match") for r in peer.sent("PATCH", SYS)]
    assert tags == ['W/"0"', '"0"']  # weak refused with 412, the strong form accepted
    assert all(t for t in tags)  # never an empty If-Match


def test_vmedia_under_manager_only(peer_factory):
    peer, bmc = peer_factory("vmedia-manager")
    bmc.boot_from_virtual_media(IMAGE)
    assert _cd(peer, MGR)["Image"] == IMAGE
    _booted(peer)


def test_patch_style_vmedia_sends_inserted_and_write_protected(peer_factory):
    peer, bmc = peer_factory("vmedia-patch")
    bmc.boot_from_virtual_media(IMAGE)
    patch = [r.body for r in peer.sent("PATCH", "/VirtualMedia/CD1")]
    assert patch[0] == {"Image": None, "Inserted": False}
    assert patch[1] == {"Image": IMAGE, "Inserted": True, "WriteProtected": True}
    _booted(peer)


@pytest.mark.parametrize("quirk, field, value", [
    ("transfer-proto", "TransferProtocolType", "HTTP"),
    ("transfer-proto-general", "TransferProtocolType", "HTTP"),
    ("transfer-method", "TransferMethod", "Stream"),
    ("credentials", "UserName", "none"),
])
def test_insert_media_adds_what_the_bmc_asks_for(peer_factory, quirk, field, value):
    peer, bmc = peer_factory(quirk)
    bmc.boot_from_virtual_media(IMAGE)
    inserts = peer.sent("POST", "InsertMedia")
    assert len(inserts) == 2 and field not in inserts[0].body and inserts[1].body[field] == value
    assert _cd(peer)["Image"] == IMAGE


def test_insert_media_omits_default_inserted(peer_factory):
    peer, bmc = peer_factory("reject-inserted")
    bmc.boot_from_virtual_media(IMAGE)
    assert peer.count("POST", "InsertMedia") == 1


def test_eject_needs_json_body(peer_factory):
    peer, bmc = peer_factory("eject-body")
    bmc.boot_from_virtual_media(IMAGE)
    assert _cd(peer)["Image"] == IMAGE


def test_task_monitor_polled_with_retry_after(peer_factory):
    peer, bmc = peer_factory("task")
    t0 = time.monotonic()
    bmc.boot_from_virtual_media(IMAGE)
    _booted(peer)
    monitors = [r for r in peer.state.requests if r.path.startswith("/taskmon/")]
    # insert + restart, each: wait Retry-After 1 s, 202 + Retry-After 1 s, then done
    assert len(monitors) == 4
    assert time.monotonic() - t0 >= 4.0


def test_task_ending_in_exception_is_an_error_with_the_bmc_message(peer_factory):
    peer, bmc = peer_factory("task-fails")
    with pytest.raises(BmcError, match="insert virtual media.*share not reachable"):
        bmc.boot_from_virtual_media(IMAGE)


def test_burst_of_503_is_retried(peer_factory):
    peer, bmc = peer_factory("busy-503", retries=4)
    assert bmc.power_state() == "Off"
    assert peer.count("GET", "/redfish/v1") >= 4


def test_503_beyond_retries_fails_with_status(peer_factory):
    peer, bmc = peer_factory("busy-503", retries=1)
    with pytest.raises(BmcError, match=r"read service root failed \(HTTP 503\): The service is busy"):
        bmc.power_state()


def test_idrac_sys518_is_retried(peer_factory):
    peer, bmc = peer_factory("idrac-sys518")
    bmc.boot_from_virtual_media(IMAGE)
    assert peer.count("POST", "ComputerSystem.Reset") == 2
    _booted(peer)


def test_ilo_invalid_operation_for_system_state_is_retried(peer_factory):
    peer, bmc = peer_factory("ilo-state")
    bmc.boot_from_virtual_media(IMAGE)
    assert peer.count("PATCH", SYS) == 2
    _booted(peer)


def test_supermicro_boots_usbcd(peer_factory):
    peer, bmc = peer_factory("supermicro")
    bmc.boot_from_virtual_media(IMAGE)
    _booted(peer, "UsbCd")


def test_rigs_yaml_vmedia_target_overrides(peer_factory):
    peer, bmc = peer_factory("supermicro", vmedia_target="Cd")
    with pytest.raises(BmcError, match="BootSourceOverrideTarget is not in the list"):
        bmc.boot_from_virtual_media(IMAGE)


def test_restricted_reset_types_power_off_then_on(peer_factory):
    peer, bmc = peer_factory("restricted-reset")
    peer.state.tree[SYS]["PowerState"] = "On"
    bmc.restart()
    assert peer.state.power_log == ["ForceOff", "On"]


def test_restart_prefers_force_restart(peer_factory):
    peer, bmc = peer_factory()
    peer.state.tree[SYS]["PowerState"] = "On"
    bmc.restart()
    assert peer.state.power_log == ["ForceRestart"]


def test_boot_override_minimal_patch_without_mode(peer_factory):
    peer, bmc = peer_factory("reject-mode")
    bmc.boot_from_network("Pxe")
    patches = peer.sent("PATCH", SYS)
    assert len(patches) == 1
    assert patches[0].body == {"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}
    _booted(peer, "Pxe")


def test_boot_override_retries_with_mode_when_required(peer_factory):
    peer, bmc = peer_factory("require-mode")
    bmc.boot_from_network("Pxe")
    patches = peer.sent("PATCH", SYS)
    assert len(patches) == 2 and patches[1].body["Boot"]["BootSourceOverrideMode"] == "UEFI"


def test_boot_override_through_redfish_settings(peer_factory):
    peer, bmc = peer_factory("settings")
    bmc.boot_from_virtual_media(IMAGE)
    assert peer.count("PATCH", SYS + "/Settings") == 1
    assert peer.state.tree[SYS]["Boot"]["BootSourceOverrideTarget"] == "Cd"


def test_406_on_identity_encoding_drops_it(peer_factory):
    peer, bmc = peer_factory("no-identity")
    assert bmc.power_state() == "Off"
    with_identity = [r for r in peer.state.requests if "identity" in (r.headers.get("Accept-Encoding") or "")]
    assert len(with_identity) == 1  # one 406, then never again: remembered for the connection
    assert [r.path for r in peer.state.requests[:2]] == ["/redfish/v1", "/redfish/v1"]


def test_dead_bmc_fails_within_bounded_time():
    """A BMC that accepts connections and never answers: an error in seconds, not minutes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        bmc = Bmc(f"http://127.0.0.1:{srv.getsockname()[1]}", "admin", "pw-dead-1", timeout_s=1.0,
                  name="node-dead")
        t0 = time.monotonic()
        with pytest.raises(BmcError, match=r"node-dead: read service root failed \(no answer\)"):
            bmc.power_state()
        assert time.monotonic() - t0 < 6
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        srv.close()


def test_system_id_none_with_one_system_picks_it(peer_factory):
    peer, bmc = peer_factory()
    assert bmc.power_state() == "Off"
    assert peer.count("GET", "/redfish/v1/Systems") >= 1


def test_unknown_system_id_names_bmc_and_status(peer_factory):
    peer, bmc = peer_factory(system_id="nope")
    with pytest.raises(BmcError, match=r"node-a: pick the system failed \(HTTP 404\).*'nope' is not on this BMC; "
                                       r"it has: 437XR1138R2"):
        bmc.power_state()


def test_evidence_and_inventory_from_dmtf_tree(peer_factory):
    peer, bmc = peer_factory()
    ev = bmc.collect_evidence(max_entries=50)
    assert ev.boot_progress == "OSRunning" and not ev.errors
    system_log = [e for e in ev.log_entries if e["log"].startswith("System/")]
    assert [e["created"] for e in system_log] == ["2012-03-07T14:45:00Z", "2012-03-07T14:44:00Z"]
    assert system_log[0]["message"] == "Temperature threshold exceeded"
    # The Manager's log services too (the BMC's own event log), newest first with the System's.
    manager_log = [e for e in ev.log_entries if e["log"] == "Manager/Log1"]
    assert len(manager_log) == 2 and all(e["message"].startswith("BMC: ") for e in manager_log)
    assert ev.log_entries[0] is manager_log[0] and manager_log[0]["created"] == "2012-03-07T14:46:01Z"
    inv = bmc.inventory()
    assert (inv.bmc_firmware, inv.bios_version, inv.secure_boot, inv.model, inv.serial) == (
        "1.45.455b66-rev4", "P79 v1.45 (12/06/2017)", "Disabled", "3500", "437XR1138R2")


def test_evidence_never_raises(peer_factory):
    peer, bmc = peer_factory()
    peer.stop()
    ev = bmc.collect_evidence()
    assert ev.log_entries == [] and ev.errors and "node-a" in ev.errors[0]


def test_no_secret_in_exceptions_or_logs(peer_factory, caplog):
    caplog.set_level(logging.DEBUG)
    peer, bmc = peer_factory("task-fails", "session-expires")
    with pytest.raises(BmcError) as info:
        bmc.power_state()
        bmc.boot_from_virtual_media(IMAGE)
    tokens = list(peer.state.sessions) + [r.headers.get("X-Auth-Token") for r in peer.state.requests]
    secrets = {"peer-pw", *(t for t in tokens if t)}
    texts = [str(info.value)] + [r.getMessage() for r in caplog.records]
    assert len(caplog.records) > 10  # the library's DEBUG request/response logs were captured
    for secret in secrets:
        assert not any(secret in t for t in texts), secret
    bad = Bmc(peer.url, "admin", "WrongPassword-xyz", auth="session", name="node-b")
    with pytest.raises(BmcError) as info2:
        bad.power_state()
    assert "WrongPassword-xyz" not in str(info2.value)
    assert not any("WrongPassword-xyz" in r.getMessage() for r in caplog.records)
