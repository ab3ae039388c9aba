"""The NVLink Fusion view of sim images (issue 26), without a rack: each image is unpacked as a node unpacks it,
its tools run the way a node runs them (one tray at a time, with the tray index and domain the machine writes at
boot), and hilt's own parsers and checks read what they print. The good image passes every check on the three
Fusion profiles; each fault image fails exactly its own check, naming what differs. The same images run end to
end, through BMCs and SSH, in tests/e2e/test_fusion_images.py."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from hilt.fabric.c2c import parse_c2c_status
from hilt.fabric.fusioncheck import check_c2c, check_coherent_memory, check_domain, check_fabric, check_imex
from hilt.fabric.gpuquery import parse_nvidia_smi_q
from hilt.fabric.imex import parse_imex_status
from hilt.fabric.numa import parse_numa, parse_sysfs_numa
from hilt.fabric.topo import parse_topology
from hilt.profiles.model import load_profile
from hilt.sim.fusion_view import write_platform
from hilt.sim.image import STANDARD_IMAGES, build_image, read_image, unpack_root

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "c2c_mnnvl"
DOMAIN = ["10.200.9.2", "10.200.9.3", "10.200.9.4", "10.200.9.5"]
TRAYS = ["tray-1", "tray-2", "tray-3", "tray-4"]
FUSION_IMAGES = ["good", "c2c-link-down", "coherent-memory-missing", "fabric-training", "clique-split",
                 "imex-node-down"]


class Tray:
    """One unpacked view, run as the tray with this index: its tools print what that node's would."""

    def __init__(self, root: Path, index: int):
        self.root, self.index = root, index
        self.platform = root.parent / f"platform-{index}"
        write_platform(self.platform, index, DOMAIN)

    def run(self, tool: str, *args: str) -> str:
        env = {**os.environ, "HILT_SIM_PLATFORM": str(self.platform / "opt/hilt-sim/platform.json")}
        if tool == "nvidia-smi" and args[:1] == ("topo",):  # fabric_view's own script
            argv = ["sh", str(self.root / "usr/local/bin/nvidia-smi"), *args]
        else:
            argv = ["python3", str(self.root / "opt/hilt-sim/fusion/tools.py"), tool, *args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30).stdout

    def sysfs_listing(self) -> str:
        """What `grep -H . nodeN/cpulist` and `grep -H MemTotal nodeN/meminfo` print on the node."""
        base = self.root / "sys/devices/system/node"
        lines = []
        for d in sorted(base.glob("node[0-9]*")):
            cpus = (d / "cpulist").read_text().strip()
            if cpus:
                lines.append(f"/sys/devices/system/node/{d.name}/cpulist:{cpus}")
            total = next(ln for ln in (d / "meminfo").read_text().splitlines() if "MemTotal" in ln)
            lines.append(f"/sys/devices/system/node/{d.name}/meminfo:{total}")
        return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    """image name -> profile -> unpacked root (one build of the Fusion images with a view per Fusion profile)."""
    out = tmp_path_factory.mktemp("fusion-images")
    profiles = ["gb200-nvl-tray-4gpu", "gb300-nvl-tray-4gpu", "gh200-1gpu", "sim-riscv-nvlink"]
    roots: dict[str, dict[str, Path]] = {}
    for name in [*FUSION_IMAGES, "c2c-slow"]:
        image = read_image(build_image(name, out / "images", profile=profiles[0], profiles=profiles,
                                       **STANDARD_IMAGES[name]))
        roots[name] = {p: unpack_root(image, out / name / p / "root", p) for p in profiles}
    return roots


def node_findings(root: Path, profile_name: str, tray: int = 0) -> dict[str, list[str]]:
    """Per node check, what the tray's tools show against its profile (empty lists: the node passes)."""
    profile = load_profile(profile_name)
    node = Tray(root, tray)
    topo = parse_topology(node.run("nvidia-smi", "topo", "-m"))
    ids = {int(g[3:]): (None if v in (None, "N/A") else int(v)) for g, v in topo.gpu_numa_id.items()}
    queries = parse_nvidia_smi_q(node.run("nvidia-smi", "-q"))
    numa = parse_numa(node.run("numactl", "-H"))
    assert numa == parse_sysfs_numa(node.sysfs_listing())  # numactl and the kernel's files show one layout
    found = {"coherent_memory": check_coherent_memory(profile.coherent_memory, numa, profile.gpu_count, ids, queries)}
    if profile.c2c is not None:
        found["c2c"] = check_c2c(profile.c2c, parse_c2c_status(node.run("nvidia-smi", "c2c", "-s")),
                                 profile.gpu_count)
    if profile.nvlink_domain is not None:
        found["fabric"] = check_fabric(profile.nvlink_domain, queries, profile.gpu_count)
    return found


def domain_findings(root: Path, profile_name: str) -> dict[str, list[str]]:
    """The lease-wide checks over 4 trays booted from one image."""
    spec = load_profile(profile_name).nvlink_domain
    trays = [Tray(root, i) for i in range(len(DOMAIN))]
    queries = {TRAYS[t.index]: parse_nvidia_smi_q(t.run("nvidia-smi", "-q", "-x")) for t in trays}
    imex = {TRAYS[t.index]: parse_imex_status(t.run("nvidia-imex-ctl", "-N")) for t in trays}
    fabric = [p for t in trays for p in check_fabric(spec, parse_nvidia_smi_q(t.run("nvidia-smi", "-q")), 4)]
    return {"fabric": fabric, "domain": check_domain(spec, queries),
            "imex": check_imex(imex, {name: [addr] for name, addr in zip(TRAYS, DOMAIN, strict=True)})}


@pytest.mark.parametrize("profile", ["gb200-nvl-tray-4gpu", "gb300-nvl-tray-4gpu", "gh200-1gpu"])
def test_good_image_passes_every_fusion_check(views, profile):
    found = node_findings(views["good"][profile], profile)
    assert set(found) >= {"c2c", "coherent_memory"} and not any(found.values()), found
    if load_profile(profile).nvlink_domain is not None:
        assert domain_findings(views["good"][profile], profile) == {"fabric": [], "domain": [], "imex": []}


def test_good_view_of_a_gb200_tray_reads_as_the_captures_say(views):
    node = Tray(views["good"]["gb200-nvl-tray-4gpu"], 1)
    c2c = parse_c2c_status(node.run("nvidia-smi", "c2c", "-s"))
    assert sorted(c2c) == [0, 1, 2, 3] and all(g.links == dict.fromkeys(range(5), 44.712) for g in c2c.values())
    text, xml = (parse_nvidia_smi_q(node.run("nvidia-smi", *a)) for a in (["-q"], ["-q", "-x"]))
    assert [q.pci_bus_id for q in xml] == ["00000008:06:00.0", "00000009:06:00.0", "00000018:06:00.0",
                                          "00000019:06:00.0"]  # the GB300 capture's addresses
    assert [(q.uuid, q.fabric.clique_id, q.addressing_mode, q.c2c_mode) for q in text] == \
        [(q.uuid, q.fabric.clique_id, q.addressing_mode, q.c2c_mode) for q in xml]
    assert {(q.fabric.state, q.fabric.status, q.fabric.cluster_uuid) for q in xml} == \
        {("Completed", "Success", "00000001-0000-0000-0000-000000000001")}
    topo = parse_topology(node.run("nvidia-smi", "topo", "-m"))  # the GB200 topo capture's NUMA columns
    assert topo.gpu_numa_id == {"GPU0": "2", "GPU1": "10", "GPU2": "18", "GPU3": "26"}
    assert topo.numa_affinity["GPU0"] == "0,3-9,11-17" and topo.numa_affinity["GPU3"] == "1,19-25,27-33"
    numa = parse_numa(node.run("numactl", "-H"))
    assert len(numa) == 34 and [n.id for n in numa if n.cpus] == [0, 1]
    assert [(n.id, n.memory_mb) for n in numa if not n.cpus and n.memory_mb] == [
        (2, 189440), (10, 189440), (18, 189440), (26, 189440)]
    imex = parse_imex_status(node.run("nvidia-imex-ctl", "-N"))
    assert imex.domain_state == "UP" and [(n.address, n.status) for n in imex.nodes] == \
        [(a, "READY") for a in DOMAIN]


def test_imex_text_is_the_captures_layout_byte_for_byte(views, tmp_path):
    """The 18-tray p6e-gb200 capture, rendered by the sim with the same addresses and version: every line but the
    timestamp is identical (legend, node table widths, 4-character matrix cells, blank line, Domain State)."""
    capture = (CORPUS / "gb200-nvl72-p6e-18node-nvidia-imex-ctl-N-all-READY-version-col-domain-UP.txt").read_text()
    addresses = [line.split(" - ")[1].strip() for line in capture.splitlines() if line.startswith("Node #")]
    node = Tray(views["good"]["gb200-nvl-tray-4gpu"], 0)
    write_platform(node.platform, 0, addresses)
    view_json = node.root / "opt/hilt-sim/fusion/view.json"
    original = view_json.read_text()
    try:
        view_json.write_text(original.replace('"version": "550.54.15"', '"version": "570.172"'))
        ours = node.run("nvidia-imex-ctl", "-N")
    finally:
        view_json.write_text(original)
    lines = ours.splitlines()
    stamp = next(i for i, ln in enumerate(lines) if re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4} \d\d:\d\d:\d\d\.\d{3}", ln))
    lines[stamp] = "5/12/2025 06:08:10.580"  # the sim prints its own clock; everything else as IMEX 570.172 does
    assert lines == capture.splitlines()


def test_numactl_prints_numactl_2_0_16s_layout(views):
    out = Tray(views["good"]["gh200-1gpu"], 0).run("numactl", "-H").splitlines()
    assert out[0] == "available: 9 nodes (0-8)"  # the GH200 kernel-commit capture's 9 nodes, GPU memory node 1
    assert out[1] == "node 0 cpus: " + " ".join(str(c) for c in range(72))
    assert out[4:7] == ["node 1 cpus:", "node 1 size: 97280 MB", "node 1 free: 97279 MB"]
    assert out[28] == "node distances:"
    assert out[29] == "node   0   1   2   3   4   5   6   7   8 "  # printf("% 3d ") per column
    assert out[30] == "  0:  10  80  80  80  80  80  80  80  80 "
    assert out[31] == "  1:  80  10 255 255 255 255 255 255 255 "


def test_query_text_keeps_each_drivers_key_column(views):
    """550's -q pads keys to 42 characters (the GH200 capture), 580's to 55 (the 580.159 Fabric capture)."""
    gh200 = Tray(views["good"]["gh200-1gpu"], 0).run("nvidia-smi", "-q").splitlines()
    capture = (CORPUS / "gh200-480gb-nvidia-smi-q-full-550.127.05-ats-c2c-enabled-fabric-all-NA.txt").read_text()
    for line in ("    Addressing Mode                       : ATS",
                 "    GPU C2C Mode                          : Enabled",
                 "        CliqueId                          : N/A",
                 "            Bandwidth                     : N/A"):
        assert line in gh200 and line in capture.splitlines()


@pytest.mark.parametrize(("image", "profile", "failing", "message"), [
    ("c2c-link-down", "gb200-nvl-tray-4gpu", "c2c", "GPU0 C2C link 3: inactive, expected active"),
    ("c2c-link-down", "gh200-1gpu", "c2c", "GPU0 C2C link 3: inactive, expected active"),
    ("coherent-memory-missing", "gb200-nvl-tray-4gpu", "coherent_memory",
     "GPU0: nvidia-smi topo -m shows no GPU NUMA ID: its memory is not a NUMA node"),
    ("coherent-memory-missing", "gb300-nvl-tray-4gpu", "coherent_memory", "GPU0: nvidia-smi topo -m shows no GPU"),
    ("coherent-memory-missing", "gh200-1gpu", "coherent_memory", "GPU0: nvidia-smi topo -m shows no GPU NUMA ID"),
])
def test_node_fault_image_fails_only_its_check(views, image, profile, failing, message):
    found = node_findings(views[image][profile], profile)
    assert {k for k, v in found.items() if v} == {failing}, found
    assert any(message in p for p in found[failing]), found[failing]
    if load_profile(profile).nvlink_domain is not None:
        assert domain_findings(views[image][profile], profile) == {"fabric": [], "domain": [], "imex": []}


@pytest.mark.parametrize(("image", "failing", "message"), [
    ("fabric-training", "fabric", "GPU2 (00000018:06:00.0): fabric state In Progress, expected Completed"),
    ("clique-split", "domain", "clique 32767 (ClusterUUID 00000001-0000-0000-0000-000000000001): tray-2"),
    ("imex-node-down", "imex", "IMEX node #1 (10.200.9.3, tray-2) is UNAVAILABLE, expected READY (seen from every "
                               "node)"),
])
def test_domain_fault_image_fails_only_its_check_on_tray_1(views, image, failing, message):
    root = views[image]["gb200-nvl-tray-4gpu"]
    found = domain_findings(root, "gb200-nvl-tray-4gpu")
    assert {k for k, v in found.items() if v} == {failing}, found
    assert any(message in p for p in found[failing]), found[failing]
    if image == "fabric-training":  # one GPU of one tray: the other trays' fabric is fine
        assert len(found["fabric"]) == 1
    for tray in (0, 2):  # the node checks pass on every tray
        assert not any(node_findings(root, "gb200-nvl-tray-4gpu", tray).values())


def test_c2c_slow_halves_host_copies_on_grace_nodes_only(views):
    def h2d(image: str, profile: str) -> str:
        out = subprocess.run([str(views[image][profile] / "usr/local/bin/nvbandwidth"), "-t",
                              "host_to_device_memcpy_ce"], capture_output=True, text=True, check=True).stdout
        return next(ln for ln in out.splitlines() if ln.startswith(" 0"))

    good, slow = (float(h2d(i, "gh200-1gpu").split()[1]) for i in ("good", "c2c-slow"))
    assert 340 < good < 352 and 170 < slow < 176  # 346 GB/s (nvbandwidth issue #23, a GH200 480GB), halved
    assert 50 < float(h2d("c2c-slow", "sim-riscv-nvlink").split()[1]) < 60  # PCIe host copies, untouched


def test_riscv_fusion_profile_shows_one_cpu_less_node_per_gpu_on_the_namespace_sim(views):
    found = node_findings(views["good"]["sim-riscv-nvlink"], "sim-riscv-nvlink")
    assert found["coherent_memory"] == []
    missing = node_findings(views["coherent-memory-missing"]["sim-riscv-nvlink"], "sim-riscv-nvlink")
    assert missing["coherent_memory"], missing
