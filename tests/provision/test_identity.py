"""Node identity: the host's DMI / device-tree identity against its BMC's System (pure parts)."""

from __future__ import annotations

import pytest

from hilt.errors import ParseError
from hilt.provision.identity import DMI_SERIAL, DMI_UUID, DT_SERIALS, bmc_identity, host_identity, match_identity

UUID = "4c4c4544-0042-3510-8052-b3c04f4d4e32"


def test_dmi_matches_bmc_case_insensitively():
    host = host_identity({DMI_UUID: UUID + "\n", DMI_SERIAL: "B3C0MN2\n"})
    assert (host.uuid, host.serial, host.source) == (UUID, "B3C0MN2", "dmi")
    assert match_identity(host, bmc_identity(UUID.upper(), "B3C0MN2")) == ("verified", "UUID and serial match")


def test_mismatch_names_what_differs():
    host = host_identity({DMI_UUID: UUID})
    other = bmc_identity("4c4c4544-0042-3510-8052-b3c04f4d4e33", None)
    assert match_identity(host, other) == ("mismatch", "UUID differs")
    assert match_identity(host_identity({DMI_SERIAL: "A"}), bmc_identity(None, "B")) == ("mismatch", "serial differs")


def test_smbios_byte_swapped_uuid_is_the_same_machine():
    # SMBIOS before 2.6 stored the first three fields little-endian; BMCs and kernels may disagree on it.
    host = host_identity({DMI_UUID: "44454c4c-4200-1035-8052-b3c04f4d4e32"})
    assert match_identity(host, bmc_identity(UUID, None))[0] == "verified"


def test_device_tree_serial_on_hosts_without_dmi():
    host = host_identity({DMI_UUID: None, DMI_SERIAL: None, DT_SERIALS[0]: "sim-riscv-0\x00"})
    assert (host.serial, host.source) == ("sim-riscv-0", "devicetree")
    assert match_identity(host, bmc_identity("x", "sim-riscv-0")) == ("verified", "serial matches")


def test_nothing_to_compare_is_unverified_and_says_why():
    status, why = match_identity(host_identity({}), bmc_identity(UUID, None))
    assert status == "unverified" and "no DMI" in why
    status, why = match_identity(host_identity({DMI_SERIAL: "A"}), bmc_identity(UUID, None))
    assert status == "unverified" and "no common identity field" in why


def test_garbage_uuid_from_host_is_a_parse_error():
    with pytest.raises(ParseError, match="product_uuid"):
        host_identity({DMI_UUID: "Not Settable"})
