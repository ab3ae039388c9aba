"""The sim's identity pieces without a rack: SMBIOS files per boot root, and the swap_bmcs fault on a rig."""

from __future__ import annotations

import pytest

from hilt.provision.identity import DMI_SERIAL, DMI_UUID, bmc_identity, host_identity, match_identity
from hilt.sim.identity import swap_bmcs, write_dmi


def test_dmi_files_match_the_sushy_system(tmp_path):
    write_dmi(tmp_path, "37650A66-35F2-462B-93B6-4CB778FC96E0", "SIM-node1")
    dmi = tmp_path / "sys/class/dmi/id"
    host = host_identity({DMI_UUID: (dmi / "product_uuid").read_text(),
                          DMI_SERIAL: (dmi / "product_serial").read_text()})
    assert match_identity(host, bmc_identity("37650a66-35f2-462b-93b6-4cb778fc96e0", None))[0] == "verified"
    assert (dmi / "product_uuid").stat().st_mode & 0o777 == 0o400


def test_swap_bmcs_swaps_only_the_pair_and_refuses_strangers():
    rig = {"nodes": {n: {"bmc": {"url": f"https://127.0.0.1:{p}"}, "ssh": {"host": n}}
                     for n, p in (("node1", 1), ("node2", 2), ("node3", 3))}}
    swap_bmcs(rig, ["node1", "node2"])
    assert [rig["nodes"][n]["bmc"]["url"][-1] for n in ("node1", "node2", "node3")] == ["2", "1", "3"]
    with pytest.raises(ValueError, match="swap_bmcs: expected two distinct nodes of the sim"):
        swap_bmcs(rig, ["node1", "node9"])
