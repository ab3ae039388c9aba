"""The NVLink Fusion checks (hilt.fabric.fusioncheck) on real captures and on those captures with one fault
put in: a healthy capture passes its profile, and each fault is one sentence naming what differs."""

from __future__ import annotations

import pytest

from hilt.fabric.c2c import parse_c2c_status
from hilt.fabric.fusioncheck import check_c2c, check_coherent_memory, check_domain, check_fabric, check_imex
from hilt.fabric.gpuquery import parse_nvidia_smi_q
from hilt.fabric.imex import parse_imex_status
from hilt.fabric.numa import parse_numa
from hilt.profiles.model import CoherentMemorySpec, load_profile

C2C_4GPU = "c2c_mnnvl/DOUBTFUL-graphics-device-4gpu-nvidia-smi-c2c-s-5links-incrementing-values-fixture.txt"
GB300_QX = "c2c_mnnvl/gb300-4gpu-nvidia-smi-q-x-xml-fabric-clique32766-ids-scrubbed.xml"
Q_580 = ("c2c_mnnvl/8gpu-node-580.159.04-nvidia-smi-q-fabric-In-Progress-wide-alignment-incorrect-config-"
         "partition-assigned.txt")
GH200_Q = "c2c_mnnvl/gh200-480gb-nvidia-smi-q-full-550.127.05-ats-c2c-enabled-fabric-all-NA.txt"
NUMACTL = "c2c_mnnvl/DOUBTFUL-gh200-numactl-hardware-9nodes-gpu-node1-97280MB-cpulist-linewrapped-kernel-commitmsg.txt"
LSCPU = "c2c_mnnvl/gh200-lambda-vm-lscpu-64cpu-9numa-nodes-8-cpuless-trailing-spaces.txt"
IMEX_18 = "c2c_mnnvl/gb200-nvl72-p6e-18node-nvidia-imex-ctl-N-all-READY-version-col-domain-UP.txt"


@pytest.fixture(scope="module")
def gb200():
    return load_profile("gb200-nvl-tray-4gpu")


@pytest.fixture(scope="module")
def gb300():
    return load_profile("gb300-nvl-tray-4gpu")


# ------------------------------------------------------------------ C2C


def test_c2c_healthy_tray_passes(corpus, gb200):
    assert check_c2c(gb200.c2c, parse_c2c_status(corpus(C2C_4GPU)), 4) == []


def test_c2c_one_link_down_is_named(corpus, gb200):
    text = corpus(C2C_4GPU).replace("C2C Link 3: 44.725 GB/s", "C2C Link 3: <inactive>")
    assert check_c2c(gb200.c2c, parse_c2c_status(text), 4) == ["GPU2 C2C link 3: inactive, expected active"]


def test_c2c_slow_link_and_missing_link_are_named(corpus, gb200):
    text = corpus(C2C_4GPU).replace("44.714 GB/s", "22.357 GB/s").replace("         C2C Link 4: 44.731 GB/s", "")
    assert check_c2c(gb200.c2c, parse_c2c_status(text), 4) == [
        "GPU0 C2C link 2: 22.357 GB/s, expected at least 44 GB/s", "GPU3 C2C: expected 5 links, found 4 (links 0-3)"]


def test_c2c_host_without_c2c_says_so(corpus, gb200):
    assert check_c2c(gb200.c2c, parse_c2c_status("No Devices support C2C.\n"), 4) == [
        "C2C: nvidia-smi c2c -s says no device supports C2C; expected 4 GPUs with 5 C2C links each"]


def test_c2c_wrong_platform_counts(corpus):
    problems = check_c2c(load_profile("gh200-1gpu").c2c, parse_c2c_status(corpus(C2C_4GPU)), 1)
    assert problems[0] == "C2C: expected 1 GPUs with C2C links, found 4 (GPU0, GPU1, GPU2, GPU3)"
    assert problems[1] == "GPU0 C2C: expected 10 links, found 5 (links 0-4)" and len(problems) == 5


# ------------------------------------------------------------------ coherent memory


def test_gh200_memory_node_and_modes_pass(corpus):
    spec = load_profile("gh200-1gpu").coherent_memory
    nodes = parse_numa(corpus(NUMACTL))
    queries = parse_nvidia_smi_q(corpus(GH200_Q))
    assert check_coherent_memory(spec, nodes, 1, {0: 1}, queries) == []
    assert check_coherent_memory(spec, nodes, 1, None, queries) == []  # counted, no topo -m


def test_memory_node_absent_small_or_with_cpus_is_named(corpus):
    spec = load_profile("gh200-1gpu").coherent_memory.model_copy(update={"addressing_mode": None, "c2c_mode": None})
    nodes = parse_numa(corpus(NUMACTL))
    assert check_coherent_memory(spec, nodes, 1, {0: 9}) == [
        "GPU0: its memory's NUMA node 9 (GPU NUMA ID in topo -m) is absent; the OS shows nodes 0-8"]
    assert check_coherent_memory(spec, nodes, 1, {0: 0}) == [
        "GPU0: NUMA node 0 has CPUs 0-71, expected a CPU-less memory node"]
    assert check_coherent_memory(spec, nodes, 1, {0: 2}) == ["GPU0: NUMA node 2 holds 0 MB, expected at least 90000 MB"]
    assert check_coherent_memory(spec, nodes, 1, {0: None}) == [
        "GPU0: nvidia-smi topo -m shows no GPU NUMA ID: its memory is not a NUMA node (expected a CPU-less node of "
        "at least 90000 MB)"]


def test_memory_nodes_counted_where_no_gpu_numa_id_is_known(corpus):
    spec = CoherentMemorySpec(min_node_mb=90000, addressing_mode=None, c2c_mode=None)
    nodes = parse_numa(corpus(NUMACTL))
    assert check_coherent_memory(spec, nodes, 2) == [
        "coherent memory: expected 2 CPU-less NUMA nodes of at least 90000 MB (one per GPU), found 1; CPU-less "
        "nodes: node 1 (no CPUs, 97280 MB)"]
    assert check_coherent_memory(spec, parse_numa(corpus(LSCPU)), 1) == [
        "coherent memory: expected 1 CPU-less NUMA node of at least 90000 MB (one per GPU), found 0; CPU-less nodes: "
        + ", ".join(f"node {i} (no CPUs, size not reported)" for i in range(1, 9))]


def test_addressing_and_c2c_mode_differences_name_gpu_and_field(corpus):
    spec = load_profile("gh200-1gpu").coherent_memory
    nodes = parse_numa(corpus(NUMACTL))
    text = corpus(GH200_Q).replace("Addressing Mode                       : ATS",
                                   "Addressing Mode                       : HMM")
    text = text.replace("GPU C2C Mode                          : Enabled", "GPU C2C Mode                          : "
                        "Disabled")
    assert check_coherent_memory(spec, nodes, 1, {0: 1}, parse_nvidia_smi_q(text)) == [
        "GPU0 (00000000:DD:00.0): Addressing Mode: expected ATS, found HMM",
        "GPU0 (00000000:DD:00.0): GPU C2C Mode: expected Enabled, found Disabled"]
    assert check_coherent_memory(spec, nodes, 1, {0: 1}, None, "nvidia-smi: command not found") == [
        "Addressing Mode: expected ATS on every GPU, but nvidia-smi -q could not be read: nvidia-smi: command not "
        "found",
        "GPU C2C Mode: expected Enabled on every GPU, but nvidia-smi -q could not be read: nvidia-smi: command not "
        "found"]


# ------------------------------------------------------------------ fabric state and health


def test_gb300_tray_fabric_passes(corpus, gb300):
    assert check_fabric(gb300.nvlink_domain, parse_nvidia_smi_q(corpus(GB300_QX)), 4) == []


def test_fabric_still_training_is_the_finding_not_its_na_rows(corpus, gb300):
    assert check_fabric(gb300.nvlink_domain, parse_nvidia_smi_q(corpus(Q_580)), 1) == [
        "GPU0: fabric state In Progress, expected Completed"]


def test_unhealthy_row_and_failed_status_are_named(corpus, gb300):
    xml = corpus(GB300_QX)
    second = xml.index('<gpu id="00000009:06:00.0">')
    xml = xml[:second] + xml[second:].replace("<bandwidth>Full</bandwidth>", "<bandwidth>Degraded</bandwidth>", 1)
    xml = xml.replace("<status>Success</status>", "<status>Failure</status>", 1)
    assert check_fabric(gb300.nvlink_domain, parse_nvidia_smi_q(xml), 4) == [
        "GPU0 (00000008:06:00.0): fabric status Failure, expected Success",
        "GPU1 (00000009:06:00.0): fabric health Bandwidth: Degraded, expected Full"]


def test_gh200_without_fabric_fails_a_domain_profile(corpus, gb300):
    assert check_fabric(gb300.nvlink_domain, parse_nvidia_smi_q(corpus(GH200_Q)), 4) == [
        "nvidia-smi -q: expected 4 GPUs, found 1", "GPU0 (00000000:DD:00.0): fabric state N/A, expected Completed"]


# ------------------------------------------------------------------ one domain across the lease


def _trays(corpus, **changes):
    """Four trays showing the GB300 capture; ``changes``: tray -> (old, new) replaced in that tray's XML."""
    xml = corpus(GB300_QX)
    return {f"tray{i}": parse_nvidia_smi_q(xml.replace(*changes.get(f"tray{i}", ("", "")))) for i in range(1, 5)}


def test_four_trays_in_one_clique_are_one_domain(corpus, gb300):
    assert check_domain(gb300.nvlink_domain, _trays(corpus)) == []


def test_a_tray_in_another_clique_is_named_once(corpus, gb300):
    trays = _trays(corpus, tray3=("<cliqueId>32766</cliqueId>", "<cliqueId>32767</cliqueId>"))
    assert check_domain(gb300.nvlink_domain, trays) == [
        "not one NVLink domain: expected one ClusterUUID and clique across tray1, tray2, tray3, tray4, found 2: "
        "clique 32766 (ClusterUUID 00000001-0000-0000-0000-000000000001): tray1, tray2, tray4; "
        "clique 32767 (ClusterUUID 00000001-0000-0000-0000-000000000001): tray3"]


def test_zero_cluster_uuid_where_a_multi_node_domain_is_expected(corpus, gb300):
    uuid = "<clusterUuid>00000001-0000-0000-0000-000000000001</clusterUuid>"
    trays = _trays(corpus, **{f"tray{i}": (uuid, "<clusterUuid>00000000-0000-0000-0000-000000000000</clusterUuid>")
                              for i in range(1, 5)})
    problems = check_domain(gb300.nvlink_domain, trays)
    assert len(problems) == 16 and problems[0] == (
        "tray1 GPU0 (00000008:06:00.0): ClusterUUID 00000000-0000-0000-0000-000000000000: a multi-node domain "
        "needs a non-zero ClusterUUID (the fabric manager assigned none)")


def test_a_gpu_still_training_is_left_to_the_fabric_check(corpus, gb300):
    old = "<state>Completed</state>\n\t\t\t<status>Success</status>\n\t\t\t<cliqueId>32766</cliqueId>"
    new = "<state>In Progress</state>\n\t\t\t<status>N/A</status>\n\t\t\t<cliqueId>N/A</cliqueId>"
    trays = _trays(corpus, tray2=(old, new))
    assert trays["tray2"][0].fabric.state == "In Progress"
    assert check_domain(gb300.nvlink_domain, trays) == []


# ------------------------------------------------------------------ IMEX


def _addresses(view):
    return {f"tray{i}": [view.nodes[i].address] for i in range(4)}


def test_imex_all_ready_from_every_tray(corpus):
    view = parse_imex_status(corpus(IMEX_18))
    assert check_imex({f"tray{i}": view for i in range(4)}, _addresses(view)) == []


def test_imex_node_down_is_said_once_with_its_tray(corpus):
    text = corpus(IMEX_18).replace("172.31.49.228   - READY    ", "172.31.49.228   - UNAVAILABLE")
    down = parse_imex_status(text.replace("Domain State: UP", "Domain State: DEGRADED"))
    view = parse_imex_status(corpus(IMEX_18))
    problems = check_imex({f"tray{i}": down for i in range(4)}, _addresses(view))
    assert problems == ["IMEX Domain State DEGRADED, expected UP (seen from every node)",
                        "IMEX node #3 (172.31.49.228, tray3) is UNAVAILABLE, expected READY (seen from every node)"]


def test_imex_missing_tray_unread_view_and_bad_connection(corpus):
    view = parse_imex_status(corpus(IMEX_18))
    lines = corpus(IMEX_18).splitlines()
    row = next(i for i, ln in enumerate(lines) if ln.strip().startswith("2 "))
    lines[row] = lines[row][:20] + "D" + lines[row][21:]
    broken = parse_imex_status("\n".join(lines))
    addresses = {**_addresses(view), "tray9": ["10.9.9.9"]}
    problems = check_imex({"tray0": broken, "tray1": view, "tray9": "nvidia-imex-ctl: not found"}, addresses)
    assert problems == [
        "IMEX connection #2 -> #1: D (Disconnected), expected C (Connected) (seen from tray0)",
        "IMEX does not list tray9 (10.9.9.9) among its 18 nodes (seen from tray0, tray1)",
        "IMEX not read on tray9: nvidia-imex-ctl: not found"]
