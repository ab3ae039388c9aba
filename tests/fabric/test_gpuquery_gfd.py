"""What GPU Feature Discovery takes from `nvidia-smi -q` (frame buffer total, the fabric clique), read from real
captures (tests/data/corpus/c2c_mnnvl, PROVENANCE.md): test_kubernetes compares GFD's labels with these."""

from __future__ import annotations

from hilt.fabric.gpuquery import node_clique, parse_nvidia_smi_q

D = "c2c_mnnvl/"
GH200_Q = D + "gh200-480gb-nvidia-smi-q-full-550.127.05-ats-c2c-enabled-fabric-all-NA.txt"
GB300_QX = D + "gb300-4gpu-nvidia-smi-q-x-xml-fabric-clique32766-ids-scrubbed.xml"
Q_580_FABRIC = (D + "8gpu-node-580.159.04-nvidia-smi-q-fabric-In-Progress-wide-alignment-incorrect-config-"
                "partition-assigned.txt")


def test_frame_buffer_total_not_bar1_nor_confidential_compute(corpus):
    (gpu,) = parse_nvidia_smi_q(corpus(GH200_Q))
    assert gpu.memory_total_mib == 97871  # "FB Memory Usage / Total"; BAR1's is N/A, Conf Compute's 0 MiB
    assert gpu.clique is None and node_clique([gpu]) is None  # Fabric all N/A: GFD labels no clique


def test_gb300_tray_clique_as_gfd_labels_it(corpus):
    gpus = parse_nvidia_smi_q(corpus(GB300_QX))
    assert [g.memory_total_mib for g in gpus] == [284208] * 4
    assert node_clique(gpus) == "00000001-0000-0000-0000-000000000001.32766"
    other = gpus[0].fabric.__class__(gpus[0].fabric.state, gpus[0].fabric.status, 32767, gpus[0].fabric.cluster_uuid)
    split = [gpus[0].__class__(*(getattr(gpus[0], f) for f in ("pci_bus_id", "product", "uuid")), other,
                               gpus[0].c2c_mode, gpus[0].addressing_mode, gpus[0].memory_total_mib), *gpus[1:]]
    assert node_clique(split) is None  # two cliques on one node: GFD labels none


def test_a_training_fabric_has_no_clique_yet(corpus):
    gpus = parse_nvidia_smi_q(corpus(Q_580_FABRIC))
    assert [g.fabric.state for g in gpus] == ["In Progress"] and node_clique(gpus) is None
