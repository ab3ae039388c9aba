"""The NVLink Fusion parsers (issue 26) on real captures: one test per file of tests/data/corpus/c2c_mnnvl, asserting
the facts its PROVENANCE entry lists; then the driver variants the captures do not cover, and refusals."""

from __future__ import annotations

import json
import re

import pytest

from hilt.errors import ParseError
from hilt.fabric.c2c import parse_c2c_status
from hilt.fabric.gpuquery import parse_nvidia_smi_q
from hilt.fabric.imex import parse_imex_status
from hilt.fabric.numa import cpu_list, parse_numa, parse_sysfs_numa
from hilt.fabric.nvlink import parse_nvlink_status
from hilt.fabric.topo import parse_topology

D = "c2c_mnnvl/"
C2C_4GPU = D + "DOUBTFUL-graphics-device-4gpu-nvidia-smi-c2c-s-5links-incrementing-values-fixture.txt"
NO_C2C = D + "DOUBTFUL-non-c2c-host-nvidia-smi-c2c-s-No-Devices-support-C2C-xgboost-fixture.txt"
GB300_QX = D + "gb300-4gpu-nvidia-smi-q-x-xml-fabric-clique32766-ids-scrubbed.xml"
Q_580_FABRIC = (D + "8gpu-node-580.159.04-nvidia-smi-q-fabric-In-Progress-wide-alignment-incorrect-config-"
                    "partition-assigned.txt")
GH200_Q = D + "gh200-480gb-nvidia-smi-q-full-550.127.05-ats-c2c-enabled-fabric-all-NA.txt"
IMEX_18 = D + "gb200-nvl72-p6e-18node-nvidia-imex-ctl-N-all-READY-version-col-domain-UP.txt"
IMEX_JSON = D + "DOUBTFUL-imex-580.30-nvidia-imex-ctl-N-j-json-DEGRADED-spec-sample-dcgm-test.json"
LSCPU = D + "gh200-lambda-vm-lscpu-64cpu-9numa-nodes-8-cpuless-trailing-spaces.txt"
NUMACTL = D + "DOUBTFUL-gh200-numactl-hardware-9nodes-gpu-node1-97280MB-cpulist-linewrapped-kernel-commitmsg.txt"
GB200_TOPO = D + "gb200-4gpu-nvidia-smi-topo-m-nv18-8nic-numa-affinity-lists-gpu-numa-id-2-10-18-26.txt"
GB200_NVLINK = D + "gb200-nvidia-smi-nvlink-s-18links-53.125-ELIDED-by-author-after-gpu1-link1.txt"
HEALTH_580 = ["Summary", "Bandwidth", "Route Recovery in progress", "Route Unhealthy", "Access Timeout Recovery",
              "Incorrect Configuration", "Partition Assigned"]

# ------------------------------------------------------------------ one test per capture


def test_c2c_four_gpus_five_links_each_doubtful_fixture(corpus):
    """DOUBTFUL: the speeds rise by 0.001 per line (fixture edits); the layout and the link count are the facts."""
    text = corpus(C2C_4GPU)
    assert not text.endswith("\n")  # as published
    gpus = parse_c2c_status(text)
    assert sorted(gpus) == [0, 1, 2, 3]
    assert {g.name for g in gpus.values()} == {"NVIDIA Graphics Device"}
    assert [g.uuid[:12] for g in gpus.values()] == ["GPU-c313e848", "GPU-777aaa14", "GPU-14339560", "GPU-61c6af66"]
    assert gpus[0].uuid == "GPU-c313e848-2b51-a47a-eede-b82de138eb6b"
    speeds = [gpus[g].links[link] for g in range(4) for link in range(5)]
    assert all(sorted(gpus[g].links) == [0, 1, 2, 3, 4] for g in gpus)
    assert speeds[0] == 44.712 and speeds[-1] == 44.731
    assert [round(b - a, 3) for a, b in zip(speeds, speeds[1:], strict=False)] == [0.001] * 19
    assert all(g.active == [0, 1, 2, 3, 4] for g in gpus.values())


def test_c2c_no_devices_is_an_empty_answer_not_an_error(corpus):
    """DOUBTFUL only as a fixture: "No Devices support C2C." means no C2C (the tool exits 3), never an error."""
    assert parse_c2c_status(corpus(NO_C2C)) == {}


def test_q_x_gb300_tray_fabric_completed_clique_32766(corpus):
    gpus = parse_nvidia_smi_q(corpus(GB300_QX))
    assert [g.pci_bus_id for g in gpus] == ["00000008:06:00.0", "00000009:06:00.0", "00000018:06:00.0",
                                            "00000019:06:00.0"]
    for i, g in enumerate(gpus):
        assert g.product == "NVIDIA GB300"
        assert g.uuid == f"GPU-0000000{i}-0000-0000-0000-00000000000{i}"  # scrubbed by the publisher
        assert (g.addressing_mode, g.c2c_mode) == ("ATS", "Enabled")
        f = g.fabric
        assert (f.state, f.status, f.clique_id) == ("Completed", "Success", 32766)
        assert f.cluster_uuid == "00000001-0000-0000-0000-000000000001"
        assert f.health == {"Summary": "Healthy", "Bandwidth": "Full", "Route Recovery in progress": "False",
                            "Route Unhealthy": "False", "Access Timeout Recovery": "False",
                            "Incorrect Configuration": "None", "Partition Assigned": "N/A"}


def test_q_580_fabric_section_in_progress_wide_key_column(corpus):
    """One pasted section (no GPU line), keys padded to column 56: read by " : ", not by column."""
    text = corpus(Q_580_FABRIC)
    assert text.splitlines()[1].index(":") == 55
    (gpu,) = parse_nvidia_smi_q(text)
    assert (gpu.pci_bus_id, gpu.product, gpu.uuid) == (None, None, None)
    f = gpu.fabric
    assert (f.state, f.status, f.clique_id, f.cluster_uuid) == ("In Progress", "N/A", None, None)
    assert list(f.health) == HEALTH_580 and set(f.health.values()) == {"N/A"}


def test_q_gh200_550_ats_c2c_enabled_fabric_not_applicable(corpus):
    text = corpus(GH200_Q)
    assert text.startswith("\n") and "GPU Memory Power Readings \n" in text
    (gpu,) = parse_nvidia_smi_q(text)
    assert (gpu.pci_bus_id, gpu.product) == ("00000000:DD:00.0", "NVIDIA GH200 480GB")
    assert gpu.uuid == "GPU-35d58415-1094-5ad1-64d1-b797587d33a7"
    assert (gpu.addressing_mode, gpu.c2c_mode) == ("ATS", "Enabled")
    f = gpu.fabric
    assert (f.state, f.status, f.clique_id, f.cluster_uuid) == ("N/A", "N/A", None, None)
    assert f.health == {"Bandwidth": "N/A"}  # 550 prints one Health row; 580 prints seven


def test_imex_text_18_trays_all_ready_domain_up(corpus):
    s = parse_imex_status(corpus(IMEX_18))
    assert s.domain_state == "UP" and s.timestamp == "5/12/2025 06:08:10.580"
    assert [n.index for n in s.nodes] == list(range(18))
    assert {n.status for n in s.nodes} == {"READY"} and {n.version for n in s.nodes} == {"570.172"}
    assert [n.address for n in s.nodes] == [f"172.31.{a}" for a in (
        "48.81", "48.98", "48.221", "49.228", "50.39", "50.44", "51.66", "51.157", "52.239", "53.80", "54.95",
        "54.183", "54.203", "54.241", "55.59", "55.187", "55.197", "56.47")]
    assert len(s.connections) == 18 * 18 and set(s.connections.values()) == {"C"}
    assert s.connections[(17, 10)] == "C"


def test_imex_json_degraded_two_nodes_doubtful_spec_sample(corpus):
    """DOUBTFUL: a trimmed spec sample (2 of at least 7 nodes); its connection states map to the matrix codes."""
    s = parse_imex_status(corpus(IMEX_JSON))
    assert s.domain_state == "DEGRADED" and s.timestamp == "5/22/2025 19:46:40.891"
    assert [(n.index, n.address, n.status, n.version) for n in s.nodes] == [
        (1, "10.76.183.30", "READY", "580.30"), (3, "10.76.186.255", "READY", "580.30")]
    assert s.connections == {(3, 1): "C", (3, 6): "C", (1, 0): "C", (1, 1): "C"}


def test_lscpu_gh200_vm_nine_nodes_eight_cpuless(corpus):
    text = corpus(LSCPU)
    assert "NUMA node1 CPU(s):                    \n" in text  # the trailing padding is kept
    nodes = parse_numa(text)
    assert [n.id for n in nodes] == list(range(9))
    assert nodes[0].cpus == list(range(64))
    assert all(n.cpus == [] for n in nodes[1:])
    assert {n.memory_mb for n in nodes} == {None}  # lscpu does not say


def test_numactl_gh200_gpu_memory_node_doubtful_wrapped_cpu_list(corpus):
    """DOUBTFUL: node 0's CPU list was wrapped over 4 lines by a commit-message formatter; it is read whole."""
    nodes = parse_numa(corpus(NUMACTL))
    assert [n.id for n in nodes] == list(range(9))
    assert nodes[0].cpus == list(range(72)) and nodes[0].memory_mb == 490037
    assert (nodes[1].cpus, nodes[1].memory_mb) == ([], 97280)  # the GPU's HBM, onlined by the driver
    assert all((n.cpus, n.memory_mb) == ([], 0) for n in nodes[2:])


def test_topo_gb200_tray_nv18_gpu_numa_ids(corpus):
    text = corpus(GB200_TOPO)
    assert not text.endswith("\n")
    t = parse_topology(text)
    assert t.gpus == ["GPU0", "GPU1", "GPU2", "GPU3"] and t.nics == [f"NIC{i}" for i in range(8)]
    assert all(t.link(a, b) == "NV18" for a in range(4) for b in range(4) if a != b)
    assert all(t.link(f"GPU{g}", f"NIC{n}") == "SYS" for g in range(4) for n in range(8))
    pix = {(a, b) for a in range(8) for b in range(8) if a != b and t.link(f"NIC{a}", f"NIC{b}") == "PIX"}
    assert pix == {(2, 3), (3, 2), (6, 7), (7, 6)}
    assert t.cpu_affinity == {"GPU0": "0-71", "GPU1": "0-71", "GPU2": "72-143", "GPU3": "72-143"}
    assert t.numa_affinity == {"GPU0": "0,3-9,11-17", "GPU1": "0,3-9,11-17", "GPU2": "1,19-25,27-33",
                               "GPU3": "1,19-25,27-33"}
    assert t.gpu_numa_id == {"GPU0": "2", "GPU1": "10", "GPU2": "18", "GPU3": "26"}
    assert t.nic_names == {f"NIC{i}": f"mlx5_{i}" for i in range(8)}


def test_nvlink_gb200_18_links_53_125_elided_by_author(corpus):
    gpus = parse_nvlink_status(corpus(GB200_NVLINK))
    assert [g.index for g in gpus] == [0, 1] and gpus[0].name == "NVIDIA GB200"
    assert gpus[0].uuid == "GPU-d1b93026-6d5b-03bd-3a71-f85b47a61bde"
    assert gpus[1].uuid == "GPU-39ac7bce-e3d6-b426-008e-fa47897c72d5"
    assert [lk.index for lk in gpus[0].links] == list(range(18))
    assert {lk.speed_gbps for g in gpus for lk in g.links} == {53.125}
    assert [lk.index for lk in gpus[1].links] == [0, 1]  # the author cut the rest ("...")


# ------------------------------------------------------------------ c2c variants and refusals


def test_c2c_inactive_link_tabs_blank_lines_and_no_uuid():
    text = ("GPU 0: NVIDIA GH200 480GB (UUID: GPU-1)\n\t C2C Link 0: 44.712 GB/s\n\n\t C2C Link 1: <inactive>\n"
            "GPU 1: NVIDIA GB200\n         C2C Link 0: 45 GB/s\n")
    gpus = parse_c2c_status(text)
    assert gpus[0].links == {0: 44.712, 1: None} and gpus[0].active == [0]
    assert (gpus[1].name, gpus[1].uuid, gpus[1].links) == ("NVIDIA GB200", None, {0: 45.0})


def test_c2c_no_devices_with_blank_lines_around():
    assert parse_c2c_status("\nNo Devices support C2C.\n\n") == {}


@pytest.mark.parametrize("text, where", [
    ("GPU 0: NVIDIA H100 (UUID: GPU-1)\n         Link 0: 26.562 GB/s\n", 2),  # nvlink -s, not c2c -s
    ("", 1),
    ("Failed to initialize NVML: Driver/library version mismatch\n", 1),
    ("GPU 0: X (UUID: GPU-1)\n  C2C Link 0: 1 GB/s\n  C2C Link 0: 1 GB/s\n", 3),
    ("GPU 0: X (UUID: GPU-1)\n  C2C Link 0: 1e999 GB/s\n", 2),
    ("GPU 0: X (UUID: GPU-1)\n  C2C Link 0: 1 GB/s\nNo Devices support C2C.\n", 3),
    ("GPU 0: X\nGPU 0: Y\n", 2),
    ("  C2C Link 0: 44.7 GB/s\n", 1),
])
def test_c2c_refuses_what_is_not_its_output_naming_the_line(text, where):
    with pytest.raises(ParseError) as err:
        parse_c2c_status(text)
    assert err.value.line_no == where


# ------------------------------------------------------------------ nvidia-smi -q variants and refusals


def _repad(text: str, column: int) -> str:
    """The same output with the key column at ``column`` (570 pads to 42, 580 to 55)."""
    out = []
    for line in text.splitlines():
        key, sep, value = line.partition(" : ")
        out.append(f"{key.rstrip():<{column}}: {value}" if sep and key.strip() else line)
    return "\n".join(out) + "\n"


def test_q_key_column_moves_between_drivers_and_the_result_does_not(corpus):
    text = corpus(GH200_Q)
    assert parse_nvidia_smi_q(_repad(text, 55)) == parse_nvidia_smi_q(text) == parse_nvidia_smi_q(_repad(text, 48))


def test_q_580_health_rows_in_a_full_two_gpu_output(corpus):
    """Two GPUs, 580's seven Health rows with a fault, CliqueId a number: each GPU keeps its own section."""
    gh200 = corpus(GH200_Q)
    fabric_580 = ("    Fabric\n        State : Completed\n        Status : Success\n        CliqueId : 7\n"
                  "        ClusterUUID : 3f3e2a10-0000-4000-8000-00000000cafe\n        Health\n"
                  "            Summary : Unhealthy\n            Bandwidth : Degraded\n"
                  "            Route Recovery in progress : False\n            Route Unhealthy : True\n")
    second = gh200.split("GPU 00000000:DD:00.0\n", 1)[1].replace("    Fabric\n", "    Old Fabric\n")
    text = gh200 + "\nGPU 00000009:06:00.0\n" + fabric_580 + second
    first, other = parse_nvidia_smi_q(_repad(text, 55))
    assert first.fabric.health == {"Bandwidth": "N/A"}
    assert other.pci_bus_id == "00000009:06:00.0" and other.uuid == first.uuid
    assert (other.fabric.state, other.fabric.clique_id) == ("Completed", 7)
    assert other.fabric.cluster_uuid == "3f3e2a10-0000-4000-8000-00000000cafe"
    assert other.fabric.health == {"Summary": "Unhealthy", "Bandwidth": "Degraded",
                                   "Route Recovery in progress": "False", "Route Unhealthy": "True"}


def test_q_without_fabric_section_has_none(corpus):
    (gpu,) = parse_nvidia_smi_q(corpus("nvidia_smi_q/a100-sxm4-80gb-q-ecc-remapped-rows-pending-author-elided.txt"))
    assert gpu.product == "NVIDIA A100-SXM4-80GB" and gpu.fabric is None and gpu.c2c_mode is None


def test_q_x_without_fabric_and_with_older_health_tags():
    xml = ('<?xml version="1.0" ?>\n<nvidia_smi_log><gpu id="00000000:17:00.0"><product_name>NVIDIA H200'
           '</product_name><uuid>GPU-9</uuid></gpu><gpu id="00000000:18:00.0"><fabric><state>In Progress</state>'
           '<status>N/A</status><cliqueId>N/A</cliqueId><clusterUuid>N/A</clusterUuid><health>'
           '<bandwidth>N/A</bandwidth><some_new_row>False</some_new_row></health></fabric></gpu></nvidia_smi_log>')
    h200, other = parse_nvidia_smi_q(xml)
    assert (h200.product, h200.fabric, h200.c2c_mode, h200.addressing_mode) == ("NVIDIA H200", None, None, None)
    assert other.fabric.health == {"Bandwidth": "N/A", "Some new row": "False"}
    assert (other.fabric.clique_id, other.fabric.cluster_uuid) == (None, None)


BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE nvidia_smi_log [<!ENTITY a "aaaaaaaaaa">'
                  '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n<nvidia_smi_log><gpu id="x">'
                  '<product_name>&b;</product_name></gpu></nvidia_smi_log>')


@pytest.mark.parametrize("text, where", [
    ("hello world\n", 1),
    ("Timestamp : now\nGPU 00000000:DD:00.0\n    Product Name : X\nnot indented\n", 4),
    ("GPU 00000000:DD:00.0\n    Fabric\n        CliqueId : twelve\n", 3),
    ('<?xml version="1.0" ?>\n<nvidia_smi_log><gpu id="x">\n<unclosed></gpu>\n', 3),
    ('<?xml version="1.0" ?>\n<html><body/></html>\n', 1),
    (BILLION_LAUGHS, 1),
    ("    just some indented words\n", 1),
])
def test_q_refuses_what_is_not_nvidia_smi_q_naming_the_line(text, where):
    with pytest.raises(ParseError) as err:
        parse_nvidia_smi_q(text)
    assert err.value.line_no == where


def test_q_x_external_entity_is_never_read(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("do not read me")
    xml = (f'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY s SYSTEM "file://{secret}">]>\n'
           '<nvidia_smi_log><gpu id="a"><product_name>&s;</product_name></gpu></nvidia_smi_log>')
    with pytest.raises(ParseError, match="entities"):
        parse_nvidia_smi_q(xml)


# ------------------------------------------------------------------ IMEX variants and refusals


def _imex_570_00(text: str) -> str:
    """IMEX 570.00's layout: no version column, 3-character matrix cells."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"\s+- Version: \S+$", "", line)
        tokens = line.split()
        if line.strip().startswith("Nodes From"):
            line = " Nodes From\\To " + "".join(f"{t:<3}" for t in tokens[2:])
        elif tokens and tokens[0].isdigit() and len(tokens) == 19:
            line = f"{tokens[0]:>7}        " + "".join(f"{t:<3}" for t in tokens[1:])
        out.append(line.rstrip())
    return "\n".join(out) + "\n"


def test_imex_570_00_no_version_column_narrow_cells(corpus):
    old = _imex_570_00(corpus(IMEX_18))
    assert "- Version:" not in old and " 0  1  2  3" in old
    s = parse_imex_status(old)
    assert {n.version for n in s.nodes} == {None} and len(s.nodes) == 18
    assert s.connections == parse_imex_status(corpus(IMEX_18)).connections


def test_imex_node_down_and_codes_other_than_connected():
    text = ("Nodes:\nNode #0   - 10.0.0.1        - READY                - Version: 580.65\n"
            "Node #1   - 10.0.0.2        - UNAVAILABLE          - Version: \n\n"
            " Nodes From\\To  0   1\n       0        C   I\n       1        N   !V!\n\nDomain State: DEGRADED\n")
    s = parse_imex_status(text)
    assert s.domain_state == "DEGRADED" and s.node(1).status == "UNAVAILABLE" and s.node(1).version is None
    assert s.connections == {(0, 0): "C", (0, 1): "I", (1, 0): "N", (1, 1): "!V!"}


def test_imex_json_states_map_to_codes_and_unknown_ones_stay_as_printed():
    doc = {"nodes": {"0": {"status": "READY", "host": "a", "connections": {
        "1": {"host": "b", "status": "DISCONNECTED"}, "2": {"host": "c", "status": "SOMETHING_NEW"}}}},
        "status": "DOWN"}
    s = parse_imex_status(json.dumps(doc))
    assert s.connections == {(0, 1): "D", (0, 2): "SOMETHING_NEW"} and s.nodes[0].version is None


@pytest.mark.parametrize("text, where", [
    ("Nodes:\nNode #0 - 10.0.0.1 - READY\n", 1),  # no Domain State
    (" Nodes From\\To  0   1\n       0        C\nDomain State: UP\n", 2),
    (" Nodes From\\To  0\n       0        X\nDomain State: UP\n", 2),
    ("GPU 0: NVIDIA GB200 (UUID: GPU-1)\n", 1),
    ("Node #0 - a - READY\nNode #0 - b - READY\nDomain State: UP\n", 2),
    ('{"nodes": {}}', 1),
    ('{"nodes": {"x": {"status": "READY"}}, "status": "UP"}', None),
    ('{"nodes": {"1": {"status": "READY", "connections": {"2": "CONNECTED"}}}, "status": "UP"}', None),
    ("[" * 100_000, 1),
    ('{"status": "UP",\n "nodes": [}', 2),
])
def test_imex_refuses_what_is_not_its_output(text, where):
    with pytest.raises(ParseError) as err:
        parse_imex_status(text)
    assert err.value.line_no == where


# ------------------------------------------------------------------ NUMA variants and refusals


def test_lscpu_json_flat_and_nested_forms(corpus):
    rows = []
    for line in corpus(LSCPU).splitlines():
        name, _, value = line.partition(":")
        rows.append({"field": name + ":", "data": value.strip()})
    flat = json.dumps({"lscpu": rows})
    nested = json.dumps({"lscpu": [{"field": "Architecture:", "data": "aarch64", "children": [
        {"field": "CPU(s):", "data": "64"}]}, {"field": "NUMA:", "data": None, "children": [
            r for r in rows if r["field"].startswith("NUMA")]}]})
    assert parse_numa(flat) == parse_numa(nested) == parse_numa(corpus(LSCPU))


def test_numactl_two_socket_x86_and_no_numa():
    text = ("available: 2 nodes (0-1)\nnode 0 cpus: 0 1 2 3 8 9 10 11\nnode 0 size: 257588 MB\n"
            "node 0 free: 250000 MB\nnode 1 cpus: 4 5 6 7 12 13 14 15\nnode 1 size: 258018 MB\n"
            "node 1 free: 251234 MB\nnode distances:\nnode   0   1 \n  0:  10  21 \n  1:  21  10 \n")
    nodes = parse_numa(text)
    assert [(n.id, n.cpus[:2], n.memory_mb) for n in nodes] == [(0, [0, 1], 257588), (1, [4, 5], 258018)]
    assert parse_numa("No NUMA available on this system\n") == []


def test_sysfs_listing_names_the_memory_only_node_by_its_meminfo():
    text = ("/sys/devices/system/node/node0/cpulist:0-3\n"
            "/sys/devices/system/node/node0/meminfo:Node 0 MemTotal:        2030612 kB\n"
            "/sys/devices/system/node/node1/meminfo:Node 1 MemTotal:        1048576 kB\n")
    nodes = parse_sysfs_numa(text)
    assert [(n.id, n.cpus, n.memory_mb) for n in nodes] == [(0, [0, 1, 2, 3], 1983), (1, [], 1024)]


@pytest.mark.parametrize("text, where", [
    ("hello\n", 1),
    ("available: 3 nodes (0-2)\nnode 0 cpus: 0\nnode 0 size: 1 MB\n", 1),
    ("node 0 cpus: 0 1\nnode 0 cpus: 2\n", 2),
    ("node 0 cpus: 0\nsomething else\n", 2),
    ("NUMA node0 CPU(s): 0-999999999\n", 1),
    ("NUMA node0 CPU(s): 7-3\n", 1),
    ("NUMA node0 CPU(s): 0-3\nthis line has no colon\n", 2),
    ('{"lscpu": [{"field": "CPU(s):", "data": "4"}]}', None),
    ('{"lscpu": "x"}', 1),
])
def test_numa_refuses_what_is_not_numactl_or_lscpu(text, where):
    with pytest.raises(ParseError) as err:
        parse_numa(text)
    assert err.value.line_no == where


def test_sysfs_listing_refuses_a_meminfo_line_of_another_node():
    with pytest.raises(ParseError, match="node1 meminfo") as err:
        parse_sysfs_numa("/sys/devices/system/node/node1/meminfo:Node 0 MemTotal: 1 kB\n")
    assert err.value.line_no == 1


def test_cpu_list_ranges():
    assert cpu_list("0,3-5,11") == [0, 3, 4, 5, 11] and cpu_list("  ") == []
