import pytest

from hilt.fabric import ParseError
from hilt.fabric.topo import parse_topology


def test_h100_nv18_with_nic_legend(corpus):
    t = parse_topology(corpus("topo/h100-8gpu-nv18-8nic-pix-sglang-check-env.txt"))
    assert t.gpus == [f"GPU{i}" for i in range(8)]
    assert t.nics == [f"NIC{i}" for i in range(8)]
    assert t.nic_names["NIC3"] == "mlx5_3"
    assert t.link("GPU3", "GPU5") == "NV18"
    assert t.link(7, "NIC7") == "PIX" and t.link("GPU7", "mlx5_7") == "PIX"
    assert t.link("NIC7", "NIC7") == "X"
    assert t.cpu_affinity["GPU4"] == "48-95,144-191"
    assert t.numa_affinity["GPU4"] == "1" and t.gpu_numa_id["GPU4"] == "N/A"


def test_dgx_a100_ten_nics_last_row_trailing_space(corpus):
    t = parse_topology(corpus("topo/dgx-a100-8gpu-nv12-10nic-gpu-numa-id.txt"))
    assert len(t.gpus) == 8 and len(t.nics) == 10
    assert t.nic_names["NIC9"] == "mlx5_9"
    assert t.link("NIC9", "NIC8") == "PIX" and t.link("GPU4", "NIC5") == "PXB"
    assert {t.link(0, b) for b in range(1, 8)} == {"NV12"}
    assert t.numa_affinity["GPU6"] == "5"


def test_dgx1_hybrid_cube_mesh_old_driver_no_numa_columns(corpus):
    t = parse_topology(corpus("topo/dgx1-v100-8gpu-hybrid-cube-mesh-nv1-nv2-mlx5.txt"))
    assert t.nics == ["mlx5_0"] and t.nic_names == {}
    assert [t.link(0, b) for b in range(1, 8)] == ["NV1", "NV1", "NV2", "NV2", "SYS", "SYS", "SYS"]
    assert t.link("GPU2", "mlx5_0") == "PIX"
    assert t.cpu_affinity["GPU5"] == "12-23,36-47"
    assert t.numa_affinity == {f"GPU{i}": None for i in range(8)}


def test_gh200_numa_affinity_list_and_gpu_numa_id(corpus):
    t = parse_topology(corpus("topo/gh200-4gpu-nv6-multi-numa-affinity-gpu-numa-id.txt"))
    assert t.gpus == ["GPU0", "GPU1", "GPU2", "GPU3"] and t.nics == []
    assert t.link(2, 3) == "NV6"
    assert t.cpu_affinity["GPU1"] == "72-143"  # a single range
    assert t.numa_affinity["GPU0"] == "0,5-11"
    assert t.gpu_numa_id["GPU3"] == "28"


def test_k80_2016_soc_legend(corpus):
    t = parse_topology(corpus("topo/k80x4-nimbix-soc-legend-mlx5.txt"))
    assert t.link(0, 2) == "SOC" and t.link(0, 1) == "PIX" and t.link(2, "mlx5_0") == "PHB"
    assert t.cpu_affinity["GPU3"] == "8-15"


def test_container_cpuset_comma_list(corpus):
    t = parse_topology(corpus("topo/rtx3090-x2-nv4-bridge-lxc-cpuset-affinity.txt"))
    assert t.link(0, 1) == "NV4"
    assert t.cpu_affinity["GPU1"] == "4,6,9,15,17"


def test_raw_tabs_no_legend_nic_rows_without_affinity(corpus):
    t = parse_topology(corpus("topo/rtx4090-x8-all-sys-2nic-raw-tabs-no-legend.txt"))
    assert len(t.gpus) == 8 and t.nics == ["NIC0", "NIC1"] and t.nic_names == {}
    assert t.link(6, "NIC0") == "PHB" and t.link("NIC1", "NIC0") == "PIX" and t.link(3, 4) == "SYS"
    assert t.numa_affinity["GPU5"] == "1" and t.gpu_numa_id["GPU5"] == "N/A"


def test_embedded_after_heading_and_among_other_text(corpus):
    matrix = corpus("topo/gh200-4gpu-nv6-multi-numa-affinity-gpu-numa-id.txt")
    text = "Python: 3.11\nNVIDIA Topology: \n" + matrix + "\nHypervisor vendor: KVM\nulimit soft: 1048576\n"
    assert parse_topology(text).link(0, 1) == "NV6"


def test_self_cell_with_and_without_trailing_space():
    a = "\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU1\tNV2\t X \n"
    b = "\tGPU0\tGPU1\nGPU0\tX\tNV2\nGPU1\tNV2\tX\n"
    assert parse_topology(a).cells == parse_topology(b).cells


def test_odd_gpu_count_mixed_nvlink_and_pcie_pcie_switch_legend():
    text = (
        "        GPU0    GPU1    GPU2    CPU Affinity\n"
        "GPU0     X      NV2     PXB     0-15\n"
        "GPU1    NV2      X      PXB     0-15\n"
        "GPU2    PXB     PXB      X      16-31\n\n"
        "Legend:\n\n  X    = Self\n"
        "  PXB  = Connection traversing multiple PCIe switches (without traversing the PCIe Host Bridge)\n"
        "  PIX  = Connection traversing a single PCIe switch\n"
    )
    t = parse_topology(text)
    assert t.gpus == ["GPU0", "GPU1", "GPU2"] and t.link(0, 1) == "NV2" and t.link(1, 2) == "PXB"
    assert t.cpu_affinity["GPU2"] == "16-31" and t.gpu_numa_id["GPU2"] is None


def test_many_nics():
    nics = [f"NIC{i}" for i in range(12)]
    cols = ["GPU0", "GPU1", *nics]
    lines = ["\t" + "\t".join(cols)]
    for row in cols:
        lines.append("\t".join([row] + [" X " if row == c else "SYS" for c in cols]))
    lines += ["", "NIC Legend:", ""] + [f"  NIC{i}: mlx5_{i}" for i in range(12)]
    t = parse_topology("\n".join(lines) + "\n")
    assert len(t.nics) == 12 and t.nic_names["NIC11"] == "mlx5_11" and t.link("GPU1", "mlx5_11") == "SYS"


LEGENDED = [
    "topo/dgx-a100-8gpu-nv12-10nic-gpu-numa-id.txt",
    "topo/dgx1-v100-8gpu-hybrid-cube-mesh-nv1-nv2-mlx5.txt",
    "topo/gh200-4gpu-nv6-multi-numa-affinity-gpu-numa-id.txt",
    "topo/k80x4-nimbix-soc-legend-mlx5.txt",
]


@pytest.mark.parametrize("name", LEGENDED)
@pytest.mark.parametrize("blank_lines", ["kept", "dropped"])
def test_a_legend_cut_short_is_not_needed(corpus, name, blank_lines):
    """Issue 24 item 9: the capture ends part-way through the legend (a log that dropped blank lines, as syslog
    does, cut at any character); the matrix and affinity columns are whole and read as from the full output."""
    full = corpus(name)
    whole = parse_topology(full)
    if blank_lines == "dropped":
        full = "\n".join(line for line in full.splitlines() if line.strip()) + "\n"
    legend = full.index("Legend:")
    for cut in range(legend, full.index("\n", full.index("X", legend)) + 1):  # "L" ... the "X = Self" line
        t = parse_topology(full[:cut])
        assert (t.cells, t.cpu_affinity, t.numa_affinity, t.gpu_numa_id) == (
            whole.cells, whole.cpu_affinity, whole.numa_affinity, whole.gpu_numa_id), full[legend:cut]


def test_a_nic_legend_cut_short_names_the_nics_it_holds(corpus):
    full = corpus("topo/dgx-a100-8gpu-nv12-10nic-gpu-numa-id.txt")
    t = parse_topology(full[:full.index("  NIC4: mlx5_4")])
    assert t.nic_names == {f"NIC{i}": f"mlx5_{i}" for i in range(4)} and t.nics == [f"NIC{i}" for i in range(10)]
    assert t.link("GPU7", "NIC7") == "PXB" and t.link("GPU1", "mlx5_1") == "PXB"


def test_a_second_row_after_the_whole_matrix_is_still_refused():
    text = "\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU1\tNV2\t X \nGPU0\t X \tNV2\n"
    with pytest.raises(ParseError, match="second row for GPU0"):
        parse_topology(text)


@pytest.mark.parametrize(
    ("text", "line_no"),
    [
        ("hello\nworld\n", 1),
        ("\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU1\tNV2\tBOGUS\n", 3),
        ("\tGPU0\tGPU1\nGPU0\t X \tNV2\n", 2),  # GPU1's row missing: no half-parsed matrix
        ("\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU7\tNV2\t X \n", 3),
        ("\tGPU0\tGPU1\nGPU0\t X\nGPU1\tNV2\t X \n", 2),
    ],
)
def test_unparseable_text_raises_with_line_number(text, line_no):
    with pytest.raises(ParseError) as err:
        parse_topology(text)
    assert err.value.line_no == line_no
    assert f"line {line_no}" in str(err.value)
