"""What a simulated NVLink Fusion node shows: its coherent CPU-GPU link (NVLink-C2C), the GPU memory the OS sees
as CPU-less NUMA nodes, and its place in a multi-node NVLink domain (fabric clique, ClusterUUID, IMEX).

The platform facts (how many C2C links at what speed, how much HBM per GPU node, how Grace numbers its NUMA
nodes, the GPUs' PCI addresses) come from public specs and the captures in tests/data/corpus/c2c_mnnvl, per
GPU family (:data:`PLATFORMS`); where a profile states an expectation the good view meets it. What an image
declares (``fusion`` in its manifest, :func:`fusion_spec`) bends it: a C2C link down, a GPU's NUMA node absent,
and, per tray index, a GPU whose fabric is still training, a tray in another clique, an IMEX node not ready.

Written here at image build: ``/opt/hilt-sim/fusion/view.json`` and ``tools.py`` (a copy of
:mod:`hilt.sim.fusion_tools`, which prints `nvidia-smi c2c -s`, `nvidia-smi -q [-x]`, `nvidia-imex-ctl -N [-j]`
and `numactl -H` at run time, on the tray it runs on), the `nvidia-imex-ctl` and `numactl` commands, and
``/sys/devices/system/node`` (:mod:`hilt.sim.nodeinit` binds it over the host's). At boot the machine adds
``/opt/hilt-sim/platform.json`` (:func:`write_platform`): its tray index and the addresses of its domain.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilt.profiles.model import Profile
from hilt.sim.fabric_view import default_bus_id, write_file

TOOLS = Path(__file__).resolve().parent / "fusion_tools.py"
#: What an image may declare under ``fusion`` (all optional; ``{}`` is a good node's).
SPEC_KEYS = frozenset({"c2c_links_down", "c2c_gbps", "numa_missing", "by_tray", "imex_down"})
TRAY_KEYS = frozenset({"clique_id", "cluster_uuid", "fabric_by_gpu"})
FABRIC_KEYS = frozenset({"state", "status", "clique_id", "cluster_uuid", "health"})
#: A fabric still training, as driver 580 prints it (tests/data/corpus/c2c_mnnvl: State "In Progress", the rest N/A).
FABRIC_TRAINING: dict[str, Any] = {"state": "In Progress", "status": None, "clique_id": None, "cluster_uuid": None,
                                   "health": {}}
#: A healthy fabric's Health rows, as the GB300 capture prints them (Incorrect Configuration "None" on 580.173).
HEALTHY: dict[str, str] = {"Summary": "Healthy", "Bandwidth": "Full", "Route Recovery in progress": "False",
                           "Route Unhealthy": "False", "Access Timeout Recovery": "False",
                           "Incorrect Configuration": "None", "Partition Assigned": "N/A"}
#: Grace's NUMA distances (the GH200 numactl capture): local 10, CPU to GPU memory 80, between GPU memories 255.
#: Between the two Graces of a GB200/GB300 tray no capture says; 40 is assumed.
DIST_LOCAL, DIST_CPU_CPU, DIST_CPU_GPU, DIST_GPU_GPU = 10, 40, 80, 255
MIG_NODES_PER_GPU = 7  # Grace reserves 8 NUMA nodes per GPU: its HBM and 7 for MIG instances (the captures)
GENERIC_CPUS, GENERIC_CPU_NODE_MB = 8, 65536  # a coherent host of no known family: its CPU node


@dataclass(frozen=True)
class Platform:
    """One Fusion GPU family as its nodes show it."""

    architecture: str
    c2c_links: int
    c2c_gbps: float
    gpu_memory_mb: int  # the GPU's NUMA node as numactl sizes it
    fb_mib: int  # FB Memory Usage Total in nvidia-smi -q
    fb_reserved_mib: int
    cpus_per_socket: int
    cpu_node_mb: int
    device_id: str
    board_part: str
    gpu_part: str
    buses: tuple[str, ...]
    module_ids: tuple[int, ...]
    tray: bool  # a compute tray of an NVL rack (Platform Info, a fabric clique, IMEX) or a standalone host
    h2d_gbps: float  # nvbandwidth host_to_device_memcpy_ce per GPU: host copies go over C2C
    d2h_gbps: float


#: Per GPU family. GH200: the GH200 480GB captures (10 C2C links at 44.712 GB/s in xgboost's GH200 fixture,
#: HBM node 97280 MB in the kernel commit's numactl, FB 97871 MiB and bus 00000000:DD:00.0 in the 550 `-q`).
#: GB200/GB300: 4-GPU compute trays, two Graces of 72 cores, GPU NUMA ids 2/10/18/26 (the GB200 topo capture),
#: buses and module ids of the GB300 `-q -x` capture; 5 C2C links per GPU (the 4-GPU C2C fixture); HBM sizes
#: from NVIDIA's product pages (GB200 186 GB per GPU) and the GB300 capture (FB total 284208 MiB), a NUMA node
#: a little smaller than the FB total as on GH200 (97280 MB of 97871 MiB). Host copy
#: bandwidth (nvbandwidth CE, per GPU) as the shipped example baselines derive it from public measurements
#: (baselines/<profile>.yaml, each entry's note): GH200 346 / 301 GB/s, a GB200/GB300 tray GPU 179.5 / 188.6 GB/s.
PLATFORMS: dict[str, Platform] = {
    "GH200": Platform("Hopper", 10, 44.712, 97280, 97871, 1103, 72, 490037, "0x234210DE", "900-2G530-0060-000",
                      "2342-888-A1", ("00000000:DD:00.0",), (1,), tray=False, h2d_gbps=346.0, d2h_gbps=301.0),
    "GB200": Platform("Blackwell", 5, 44.712, 189440, 189471, 1135, 72, 490037, "0x294110DE",
                      "900-2G548-0001-000", "2941-886-A1",
                      ("00000008:06:00.0", "00000009:06:00.0", "00000018:06:00.0", "00000019:06:00.0"),
                      (2, 1, 4, 3), tray=True, h2d_gbps=179.5, d2h_gbps=188.6),
    "GB300": Platform("Blackwell", 5, 44.712, 283648, 284208, 1547, 72, 490037, "0x31C210DE",
                      "900-2G548-0081-000", "31C2-893-A1",
                      ("00000008:06:00.0", "00000009:06:00.0", "00000018:06:00.0", "00000019:06:00.0"),
                      (2, 1, 4, 3), tray=True, h2d_gbps=179.5, d2h_gbps=188.6),
}
CLUSTER_UUID = "00000001-0000-0000-0000-000000000001"  # the GB300 capture's (scrubbed) ClusterUUID
CLIQUE_ID = 32766  # the GB300 capture's clique


def platform_of(profile: Profile) -> Platform | None:
    """The Fusion family of a profile's GPUs (by name: "NVIDIA GB200" -> GB200), or None (no C2C, no Grace)."""
    name = (profile.gpu_name or "").upper()
    return next((p for family, p in PLATFORMS.items() if family in name), None)


def fusion_spec(declared: dict[str, Any] | None) -> dict[str, Any]:
    """The image's ``fusion`` declaration, checked; an unknown key is an error naming the valid ones."""
    spec = dict(declared or {})
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ValueError(f"fusion: unknown field(s) {unknown}; valid: {sorted(SPEC_KEYS)}")
    for tray, faults in (spec.get("by_tray") or {}).items():
        if not str(tray).isdigit() or not isinstance(faults, dict) or set(faults) - TRAY_KEYS:
            raise ValueError(f"fusion.by_tray[{tray!r}]: expected a tray index with fields {sorted(TRAY_KEYS)}")
        for gpu, fields in (faults.get("fabric_by_gpu") or {}).items():
            if not str(gpu).isdigit() or set(fields) - FABRIC_KEYS:
                raise ValueError(f"fusion.by_tray[{tray}].fabric_by_gpu[{gpu!r}]: fields {sorted(FABRIC_KEYS)}")
    return spec


def _ranges(ids: list[int]) -> str:
    """``0-3,8,10-11``: the kernel's list format (cpulist, online, has_memory)."""
    spans: list[list[int]] = []
    for i in sorted(ids):
        if spans and spans[-1][1] == i - 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


class FusionLayout:
    """The node's GPUs, C2C links and NUMA nodes: derived once from the profile, the platform and the spec.

    A Grace node (:func:`platform_of`) numbers its NUMA nodes as Grace does: the CPU nodes, then 8 per GPU (its
    memory and 7 MIG nodes). A profile that expects coherent memory on GPUs of no known family (the simulated
    RISC-V Fusion host) gets the plain shape its RISC-V guests' firmware gives: one CPU node, then one CPU-less
    node per GPU of twice the profile's minimum (at least 32 MiB, the guests' size).
    """

    def __init__(self, profile: Profile, spec: dict[str, Any], driver: str):
        self.profile, self.spec, self.driver = profile, fusion_spec(spec), driver
        self.platform = platform_of(profile)
        self.n = profile.gpu_count
        p = self.platform
        coherent = getattr(profile, "coherent_memory", None)
        self.generic = p is None and coherent is not None
        self.sockets = (1 if self.n == 1 else 2) if p is not None else 1 if self.generic else 0
        self.per_gpu_nodes = MIG_NODES_PER_GPU + 1 if p is not None else 1
        self.cpus_per_socket = p.cpus_per_socket if p is not None else GENERIC_CPUS
        self.cpu_node_mb = p.cpu_node_mb if p is not None else GENERIC_CPU_NODE_MB
        self.gpu_memory_mb = p.gpu_memory_mb if p is not None else \
            max(32, 2 * int(getattr(coherent, "min_node_mb", 16) or 16))
        self.down = {(int(g), int(lk)) for g, lk in self.spec.get("c2c_links_down", [])}
        self.missing = {int(g) for g in self.spec.get("numa_missing", [])}

    @property
    def has_numa(self) -> bool:
        return self.sockets > 0

    def gpu_numa_id(self, i: int) -> int | None:
        """The NUMA node of GPU i's memory (None where it is not one)."""
        if not self.has_numa or i in self.missing:
            return None
        return self.sockets + self.per_gpu_nodes * i

    def socket_of(self, i: int) -> int:
        return 0 if self.sockets < 2 else (0 if i < (self.n + 1) // 2 else 1)

    def cpus(self, socket: int) -> list[int]:
        per = self.cpus_per_socket
        return list(range(socket * per, (socket + 1) * per))

    def numa_nodes(self) -> list[dict[str, Any]]:
        """Every online NUMA node: id, cpus, size and free MB, kind (cpu, gpu, mig)."""
        if not self.has_numa:
            return []
        nodes = [{"id": s, "cpus": self.cpus(s), "size_mb": self.cpu_node_mb, "free_mb": self.cpu_node_mb * 99 // 100,
                  "kind": "cpu"} for s in range(self.sockets)]
        for i in range(self.n):
            base = self.sockets + self.per_gpu_nodes * i
            if i not in self.missing:
                nodes.append({"id": base, "cpus": [], "size_mb": self.gpu_memory_mb,
                              "free_mb": self.gpu_memory_mb - 1, "kind": "gpu"})
            nodes += [{"id": base + k, "cpus": [], "size_mb": 0, "free_mb": 0, "kind": "mig"}
                      for k in range(1, self.per_gpu_nodes)]
        for node in nodes:
            node["distances"] = [self.distance(node, other) for other in nodes]
        return nodes

    @staticmethod
    def distance(a: dict[str, Any], b: dict[str, Any]) -> int:
        if a["id"] == b["id"]:
            return DIST_LOCAL
        if a["kind"] == b["kind"] == "cpu":
            return DIST_CPU_CPU
        return DIST_CPU_GPU if "cpu" in (a["kind"], b["kind"]) else DIST_GPU_GPU

    def topo_numa(self) -> list[tuple[str, str, str]] | None:
        """Per GPU, `topo -m`'s CPU Affinity, NUMA Affinity and GPU NUMA ID (the GB200 capture's shape)."""
        if not self.has_numa:
            return None
        nodes = self.numa_nodes()
        out = []
        for i in range(self.n):
            socket = self.socket_of(i)
            cpus = self.cpus(socket)
            # the socket's CPU node and the MIG nodes of its GPUs (the GPUs' own memory nodes are not listed)
            mine = [socket] + [n["id"] for n in nodes if n["kind"] == "mig"
                               and self.socket_of((n["id"] - self.sockets) // self.per_gpu_nodes) == socket]
            gpu_id = self.gpu_numa_id(i)
            out.append((f"{cpus[0]}-{cpus[-1]}", _ranges(mine), "N/A" if gpu_id is None else str(gpu_id)))
        return out

    def c2c(self, i: int) -> list[float | None]:
        p = self.platform
        if p is None:
            return []
        links = p.c2c_links
        speed = float(self.spec.get("c2c_gbps") or p.c2c_gbps)
        expected = getattr(self.profile, "c2c", None)
        if expected is not None:
            links = int(getattr(expected, "links_per_gpu", links) or links)
            speed = max(speed, float(getattr(expected, "min_link_gbps", 0) or 0)) \
                if not self.spec.get("c2c_gbps") else speed
        return [None if (i, lk) in self.down else speed for lk in range(links)]

    def gpus(self, uuid_of: Any, vbios: str) -> list[dict[str, Any]]:
        p = self.platform
        out = []
        for i in range(self.n):
            gpu: dict[str, Any] = {
                "index": i, "name": self.profile.gpu_name or "NVIDIA H100 80GB HBM3", "uuid": uuid_of(i),
                "serial": f"16500000{i + 1:05d}", "vbios": vbios, "c2c": self.c2c(i),
                "architecture": p.architecture if p else "Hopper",
                "bus_id": p.buses[i % len(p.buses)] if p else default_bus_id(i),
                "module_id": p.module_ids[i % len(p.module_ids)] if p else i + 1,
                "device_id": p.device_id if p else "0x233010DE", "board_id": "0x80600" if p else "0x1800",
                "board_part": p.board_part if p else "692-2G520-0200-000",
                "gpu_part": p.gpu_part if p else "2330-885-A1",
                "fb_mib": p.fb_mib if p else 81559, "fb_reserved_mib": p.fb_reserved_mib if p else 580,
                "fabric_guid": f"0x{0x0123_4567_0000_0000 + i + 1:016x}",
                "fabric": None,
            }
            if p is not None and p.tray:
                gpu["tray"] = {"chassis_serial": "1820000000001", "slot_number": 1}
                gpu["fabric"] = {"state": "Completed", "status": "Success", "clique_id": CLIQUE_ID,
                                 "cluster_uuid": CLUSTER_UUID, "health": dict(HEALTHY)}
            elif p is not None:  # a standalone Grace Hopper: no NVLink switch, every fabric field N/A
                gpu["fabric"] = {"state": None, "status": None, "clique_id": None, "cluster_uuid": None, "health": {}}
            out.append(gpu)
        return out

    def view(self, uuid_of: Any, vbios: str) -> dict[str, Any]:
        """``view.json``: what fusion_tools prints from."""
        major = int(self.driver.split(".")[0]) if self.driver.split(".")[0].isdigit() else 550
        p = self.platform
        by_tray = {str(k): v for k, v in (self.spec.get("by_tray") or {}).items()}
        return {
            "driver": self.driver, "driver_major": major, "cuda": "13.0" if major >= 580 else "12.4",
            "addressing_mode": "ATS" if p else "HMM", "c2c_mode": "Enabled" if p else "N/A",
            "gpus": self.gpus(uuid_of, vbios), "by_tray": by_tray,
            "imex": {"version": self.driver, "down": [int(i) for i in self.spec.get("imex_down", [])]}
            if p is not None and p.tray else None,
            "numa": {"nodes": self.numa_nodes()},
        }


_WRAPPER = '#!/bin/sh\n# {tool} of a simulated node (hilt.sim.fusion_view): prints the real format.\n' \
           'exec python3 /opt/hilt-sim/fusion/tools.py {tool} "$@"\n'


def _meminfo(node: int, size_mb: int, free_mb: int) -> str:
    """``/sys/devices/system/node/nodeN/meminfo`` in the kernel's layout (node_read_meminfo, 6.x)."""
    total, free = size_mb * 1024, free_mb * 1024
    rows = [("MemTotal", total), ("MemFree", free), ("MemUsed", total - free), ("SwapCached", 0), ("Active", 0),
            ("Inactive", 0), ("Active(anon)", 0), ("Inactive(anon)", 0), ("Active(file)", 0),
            ("Inactive(file)", 0), ("Unevictable", 0), ("Mlocked", 0), ("Dirty", 0), ("Writeback", 0),
            ("FilePages", 0), ("Mapped", 0), ("AnonPages", 0), ("Shmem", 0), ("KernelStack", 0), ("PageTables", 0),
            ("SecPageTables", 0), ("NFS_Unstable", 0), ("Bounce", 0), ("WritebackTmp", 0), ("KReclaimable", 0),
            ("Slab", 0), ("SReclaimable", 0), ("SUnreclaim", 0), ("AnonHugePages", 0), ("ShmemHugePages", 0),
            ("ShmemPmdMapped", 0), ("FileHugePages", 0), ("FilePmdMapped", 0)]
    text = "".join(f"Node {node} {name + ':':<15} {value:>8} kB\n" for name, value in rows)
    return text + "".join(f"Node {node} {name}: {0:>5}\n" for name in ("HugePages_Total", "HugePages_Free",
                                                                        "HugePages_Surp"))


def _cpumap(cpus: list[int], width: int) -> str:
    """The kernel's cpumap: 32-bit hex words, comma-separated, most significant first."""
    mask = sum(1 << c for c in cpus)
    words = max(1, (width + 31) // 32)
    return ",".join(f"{(mask >> (32 * w)) & 0xFFFF_FFFF:08x}" for w in reversed(range(words)))


def write_sys_nodes(root: Path, nodes: list[dict[str, Any]]) -> None:
    """``sys/devices/system/node``: online/possible/has_* lists and per node cpulist, cpumap, meminfo, distance."""
    base = root / "sys/devices/system/node"
    ids = [n["id"] for n in nodes]
    ncpus = sum(len(n["cpus"]) for n in nodes)
    lists = {"online": ids, "possible": ids, "has_cpu": [n["id"] for n in nodes if n["cpus"]],
             "has_memory": [n["id"] for n in nodes if n["size_mb"]],
             "has_normal_memory": [n["id"] for n in nodes if n["kind"] == "cpu"], "has_generic_initiator": []}
    for name, values in lists.items():
        write_file(base / name, _ranges(values) + "\n", 0o444)
    for n in nodes:
        d = base / f"node{n['id']}"
        write_file(d / "cpulist", _ranges(n["cpus"]) + "\n", 0o444)
        write_file(d / "cpumap", _cpumap(n["cpus"], ncpus) + "\n", 0o444)
        write_file(d / "meminfo", _meminfo(n["id"], n["size_mb"], n["free_mb"]), 0o444)
        write_file(d / "distance", " ".join(str(x) for x in n["distances"]) + "\n", 0o444)


def write_fusion_view(root: Path, profile: Profile, spec: dict[str, Any], *, driver: str, uuid_of: Any,
                      vbios: str) -> FusionLayout:
    """Write the node's Fusion tools and facts under ``root`` (a view of one profile); returns the layout."""
    layout = FusionLayout(profile, spec, driver)
    root = Path(root)
    fusion = root / "opt/hilt-sim/fusion"
    fusion.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TOOLS, fusion / "tools.py")
    (fusion / "tools.py").chmod(0o755)
    write_file(fusion / "view.json", json.dumps(layout.view(uuid_of, vbios), indent=1, sort_keys=True) + "\n")
    for tool in ("nvidia-imex-ctl", "numactl"):
        write_file(root / "usr/local/bin" / tool, _WRAPPER.format(tool=tool), 0o755)
    nodes = layout.numa_nodes()
    if nodes:
        write_sys_nodes(root, nodes)
    return layout


def write_platform(root: Path, tray_index: int, domain: list[str]) -> None:
    """At boot, the machine's place: its tray index (chassis slot) and the addresses of the trays of its NVLink
    domain, in IMEX node-config order (``/opt/hilt-sim/platform.json``, read by fusion_tools)."""
    write_file(Path(root) / "opt/hilt-sim/platform.json",
               json.dumps({"tray_index": tray_index, "slot_number": tray_index + 1, "domain": list(domain)}) + "\n")


def gpu_uuid(profile_name: str, i: int) -> str:
    """The GPU UUIDs fabric_view gives a profile's GPUs (one identity across nvidia-smi, NVML and -q)."""
    return "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"hilt-sim/{profile_name}/{i}"))
