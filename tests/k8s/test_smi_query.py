"""The GFD facts of ``nvidia-smi -q``, read from real captured output (tests/data/corpus, PROVENANCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.errors import ParseError
from hilt.k8s.smi_query import node_clique, parse_smi_query

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
GH200 = CORPUS / "c2c_mnnvl" / "gh200-480gb-nvidia-smi-q-full-550.127.05-ats-c2c-enabled-fabric-all-NA.txt"
FABRIC_580 = (CORPUS / "c2c_mnnvl" /
              "8gpu-node-580.159.04-nvidia-smi-q-fabric-In-Progress-wide-alignment-incorrect-config-partition-assigned.txt")
A100 = CORPUS / "nvidia_smi_q" / "a100-sxm4-80gb-q-ecc-remapped-rows-pending-author-elided.txt"


def test_gh200_full_output():
    (gpu,) = parse_smi_query(GH200.read_text())
    assert (gpu.bus_id, gpu.name, gpu.uuid) == ("00000000:DD:00.0", "NVIDIA GH200 480GB",
                                                "GPU-35d58415-1094-5ad1-64d1-b797587d33a7")
    assert gpu.memory_total_mib == 97871  # FB Memory Usage/Total, not BAR1's or Conf Compute's Total
    assert (gpu.fabric_state, gpu.clique_id, gpu.cluster_uuid, gpu.clique) == (None, None, None, None)


def test_author_elided_a100_keeps_what_is_there():
    (gpu,) = parse_smi_query(A100.read_text())
    assert gpu.name == "NVIDIA A100-SXM4-80GB" and gpu.uuid is None and gpu.memory_total_mib is None


def test_driver_580_wide_key_column_fabric_section():
    # the capture is the Fabric section alone: read as GPU 0's block, the way the driver nests it
    (gpu,) = parse_smi_query("GPU 00000000:18:00.0\n" + FABRIC_580.read_text())
    assert gpu.fabric_state == "In Progress" and gpu.clique_id is None and gpu.cluster_uuid is None
    assert node_clique([gpu]) is None


def test_not_smi_query_output_is_a_parse_error_with_the_line():
    with pytest.raises(ParseError) as err:
        parse_smi_query("\n\nNVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n")
    assert err.value.line_no == 3
    with pytest.raises(ParseError):
        parse_smi_query(FABRIC_580.read_text())  # a fragment without its GPU block
