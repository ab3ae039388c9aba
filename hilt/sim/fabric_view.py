"""What a simulated node shows of its GPU fabric: real-format tool output written into an image root overlay.

The engine never knows it talks to the simulator, so everything here imitates the real thing byte for byte
where the parsers care: tab-separated `topo -m`, `\\t Link N:` lines, NUL-terminated device-tree strings and
big-endian cells, and a `pynvml` module that answers the real collector from a JSON file beside it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from hilt.fabric.devicetree import encode_property
from hilt.profiles.model import Profile

_BUSES = ["18", "2a", "3a", "5d", "9a", "ab", "ba", "db"]
_DEFAULT_DRIVER = "550.54.15"
#: The firmware a simulated H100 reports: VBIOS as in tests/data/corpus/proc (an H100 HBM3's
#: /proc/driver/nvidia/gpus/*/information), InfoROM image as NVML's nvmlDeviceGetInforomImageVersion prints it.
VBIOS = "96.00.99.00.01"
INFOROM = "G520.0200.00.05"
_XID_TEXT = {
    13: "Graphics SM Warp Exception on (GPC 0, TPC 0, SM 0): Out Of Range Address",
    31: "pid=2171, name=python3, Ch 00000008, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0",
    48: "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0.",
    63: "Row Remapper: New row marked for remapping, reset gpu to activate.",
    64: "Row Remapper: Failure in marking a row for remapping.",
    74: "NVLink: fatal error detected on link 2(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)",
    79: "pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    94: "Contained: SM (0x1). RST: No, D-RST: No",
    119: "pid=3120, name=python3, Timeout after 6s of waiting for RPC response from GPU0 GSP!",
}
_LEGEND = """
Legend:

  X    = Self
  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes (e.g., QPI/UPI)
  NODE = Connection traversing PCIe as well as the interconnect between PCIe Host Bridges within a NUMA node
  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)
  PXB  = Connection traversing multiple PCIe bridges (without traversing the PCIe Host Bridge)
  PIX  = Connection traversing at most a single PCIe bridge
  NV#  = Connection traversing a bonded set of # NVLinks
"""


class FabricView:
    """The node's fabric, derived once from the profile and the image's fault spec: what the sim's nvidia-smi
    prints here, and what hilt.sim.k8s_view's NFD and GPU feature discovery files say, read from one view."""

    def __init__(self, profile: Profile, spec: dict[str, Any]):
        self.profile = profile
        self.n = profile.gpu_count
        self.driver = str(spec.get("driver") or profile.driver or _DEFAULT_DRIVER)
        self.gpu_name = str(spec.get("gpu_name") or profile.gpu_name or "NVIDIA H100 80GB HBM3")
        self.arch = "riscv64" if profile.devicetree is not None else "x86_64"
        self.links = profile.nvlink.active_links_per_gpu
        self.speed = profile.nvlink.min_link_speed_gbps or 26.562
        self.down = {(int(g), int(lk)) for g, lk in spec.get("links_down", [])}
        self.overrides = {k: str(v) for k, v in (spec.get("topo_overrides") or {}).items()}
        self.errors = spec.get("nvlink_errors") or {}
        self.xids = [int(x) for x in spec.get("xids", [])]
        self.dt_missing = set(spec.get("dt_missing", []))
        self.nics = sorted({nic for nics in (profile.nic_locality or {}).values() for nic in nics})
        # a Fusion platform's own PCI addresses and Grace NUMA affinity (hilt.sim.fusion_view), else the defaults
        self.buses = [str(b) for b in spec.get("buses") or []]
        self.topo_numa = [tuple(row) for row in spec.get("topo_numa") or []]
        # a Grace node's `nvidia-smi -q` (Fabric, C2C Mode, Addressing Mode, per tray) is hilt.sim.fusion_tools';
        # elsewhere -q is the file hilt.sim.k8s_view writes
        self.fusion_query = bool(spec.get("fusion_query"))
        self.vbios = [self._per_gpu(spec, "vbios", i, VBIOS) for i in range(self.n)]
        self.inforom = [self._per_gpu(spec, "inforom", i, INFOROM) for i in range(self.n)]
        if self.n > len(_BUSES):
            raise ValueError(f"the simulator shows at most {len(_BUSES)} GPUs, profile asks {self.n}")

    @staticmethod
    def _per_gpu(spec: dict[str, Any], key: str, i: int, default: str) -> str:
        """``<key>_by_gpu: {index: version}`` (one GPU flashed differently), else ``<key>``, else the default."""
        by_gpu = spec.get(f"{key}_by_gpu") or {}
        return str(by_gpu.get(str(i)) or by_gpu.get(i) or spec.get(key) or default)

    def uuid(self, i: int) -> str:
        return "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"hilt-sim/{self.profile.name}/{i}"))

    def bus(self, i: int) -> str:
        if self.buses:
            return self.buses[i % len(self.buses)][4:].lower()
        return f"0000:{_BUSES[i]}:00.0"

    def counter(self, gpu: int, link: int, name: str) -> int:
        return int(self.errors.get(f"GPU{gpu}", {}).get(str(link), {}).get(name, 0))

    def cell(self, a: str, b: str) -> str:
        if a == b:
            return " X "
        for key in (f"{a}-{b}", f"{b}-{a}"):
            if key in self.overrides:
                return self.overrides[key]
        if a.startswith("GPU") and b.startswith("GPU"):
            return self.profile.expected_link(int(a[3:]), int(b[3:]))
        gpu, nic = (a, b) if a.startswith("GPU") else (b, a)
        if gpu.startswith("GPU"):
            return (self.profile.nic_locality or {}).get(gpu, {}).get(self.nics[int(nic[3:])], "SYS")
        return "SYS"

    def topo(self) -> str:
        gpus = [f"GPU{i}" for i in range(self.n)]
        nics = [f"NIC{i}" for i in range(len(self.nics))]
        cols = gpus + nics
        half = max(1, self.n // 2)
        lines = ["\t" + "\t".join(cols + ["CPU Affinity", "NUMA Affinity", "GPU NUMA ID"])]
        for i, g in enumerate(gpus):
            node = 0 if i < half else 1
            cpus = "0-47,96-143" if node == 0 else "48-95,144-191"
            affinity = list(self.topo_numa[i]) if i < len(self.topo_numa) else [cpus, str(node), "N/A"]
            lines.append("\t".join([g] + [self.cell(g, c) for c in cols] + affinity[:2] + [""] + affinity[2:]))
        for nic in nics:
            lines.append("\t".join([nic] + [self.cell(nic, c) for c in cols]))
        text = "\n".join(lines) + "\n" + _LEGEND
        if nics:
            text += "\nNIC Legend:\n\n" + "".join(f"  NIC{i}: {d}\n" for i, d in enumerate(self.nics))
        return text

    def gpu_line(self, i: int) -> str:
        return f"GPU {i}: {self.gpu_name} (UUID: {self.uuid(i)})"

    def nvlink_status(self) -> str:
        out = []
        for i in range(self.n):
            out.append(self.gpu_line(i))
            for lk in range(self.links):
                state = "<inactive>" if (i, lk) in self.down else f"{self.speed:.3f} GB/s"
                out.append(f"\t Link {lk}: {state}")
        return "\n".join(out) + "\n"

    def nvlink_errors(self) -> str:
        out = []
        for i in range(self.n):
            out.append(self.gpu_line(i))
            for lk in range(self.links):
                out.append(f"\t Link {lk}: Replay Errors: {self.counter(i, lk, 'replay')}")
                out.append(f"\t Link {lk}: Recovery Errors: {self.counter(i, lk, 'recovery')}")
                crc = self.counter(i, lk, "crc_flit") + self.counter(i, lk, "crc_data")
                out.append(f"\t Link {lk}: CRC Errors: {crc}")
        return "\n".join(out) + "\n"

    def nvlink_capabilities(self) -> str:
        caps = [
            "P2P is supported",
            "Access to system memory supported",
            "P2P atomics supported",
            "System memory atomics supported",
            "SLI is supported",
            "Link is supported",
        ]
        out = []
        for i in range(self.n):
            out.append(self.gpu_line(i))
            for lk in range(self.links):
                out += [f"\t Link {lk}, {c}: {'false' if c == 'Link is supported' else 'true'}" for c in caps]
        return "\n".join(out) + "\n"

    def gpu_list(self) -> str:
        return "".join(self.gpu_line(i) + "\n" for i in range(self.n))

    def proc_version(self) -> str:
        return (
            f"NVRM version: NVIDIA UNIX Open Kernel Module for {self.arch}  {self.driver}  Release Build  "
            "(dvs-builder@U16-I3-B03-4-3)  Tue Feb 20 16:32:28 UTC 2024\n"
            "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04) \n"
        )

    def information(self, i: int) -> str:
        return (
            f"Model: \t\t {self.gpu_name}\nIRQ:   \t\t {120 + i}\nGPU UUID: \t {self.uuid(i)}\n"
            f"Video BIOS: \t {self.vbios[i]}\nBus Type: \t PCIe\nDMA Size: \t 52 bits\n"
            f"DMA Mask: \t 0xfffffffffffff\nBus Location: \t {self.bus(i)}\nDevice Minor: \t {i}\n"
            f"GPU Firmware: \t {self.driver}\nGPU Excluded:\t No\n"
        )

    def kernel_log(self) -> str:
        lines = [
            "[    0.000000] Linux version 6.8.0-hilt-sim (builder@hilt) (gcc 12.3.0) #1 SMP PREEMPT_DYNAMIC",
            "[    4.211734] nvidia: loading out-of-tree module taints kernel.",
            f"[    4.402114] NVRM: loading NVIDIA UNIX Open Kernel Module for {self.arch}  {self.driver}  "
            "Release Build  (dvs-builder@U16-I3-B03-4-3)  Tue Feb 20 16:32:28 UTC 2024",
            "[    5.120551] nvidia-nvswitch: Probing device 0000:05:00.0, Vendor Id = 0x10de, Device Id = 0x22a3",
        ]
        for k, xid in enumerate(self.xids):
            bus = self.bus(k % self.n)[:-2]
            text = _XID_TEXT.get(xid, f"pid=2171, name=python3, Xid {xid} event")
            lines.append(f"[  {312 + k}.551022] NVRM: Xid (PCI:{bus}): {xid}, {text}")
        return "\n".join(lines) + "\n"

    def nvml(self) -> dict[str, Any]:
        gpus = []
        for i in range(self.n):
            links = []
            for lk in range(self.links):
                active = (i, lk) not in self.down
                links.append(
                    {
                        "active": active,
                        "remote_pci_bus_id": f"00000000:{5 + lk % 4:02x}:00.0",
                        "errors": [self.counter(i, lk, c) for c in ("replay", "recovery", "crc_flit", "crc_data")],
                    }
                )
            uncorrected = sum(1 for x in self.xids if x == 48)
            gpus.append(
                {
                    "name": self.gpu_name,
                    "uuid": self.uuid(i),
                    "pci_bus_id": "0000" + self.bus(i).upper(),
                    "vbios": self.vbios[i],
                    "inforom": self.inforom[i],
                    "links": links,
                    "ecc": {"volatile": [0, uncorrected], "aggregate": [0, uncorrected]},
                    "row_remap": [0, 0, int(63 in self.xids), int(64 in self.xids)],
                }
            )
        return {"driver": self.driver, "nvml_version": "12." + self.driver, "gpus": gpus}


def default_bus_id(i: int) -> str:
    """The PCI address nvidia-smi prints for GPU i of a simulated node of no particular platform."""
    return f"00000000:{_BUSES[i % len(_BUSES)].upper()}:00.0"


def write_file(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """A file of a node's view, its directories made, with the mode the real file has."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    path.chmod(mode)


def _heredoc(text: str) -> str:
    return f"cat <<'HILT_EOF'\n{text.rstrip(chr(10))}\nHILT_EOF\n"


def _nvidia_smi(view: FabricView) -> str:
    cases: dict[str, str | None] = {
        '"topo -m"|"topo --matrix"': view.topo(),
        '"nvlink -s"|"nvlink --status"': view.nvlink_status(),
        '"nvlink -e"|"nvlink --errorcounters"': view.nvlink_errors(),
        '"nvlink -c"|"nvlink --capabilities"': view.nvlink_capabilities(),
        '"-L"|"--list-gpus"': view.gpu_list(),
        # C2C status ("No Devices support C2C." off Grace) and, on Grace nodes, the full query (text, -x XML) come
        # from hilt.sim.fusion_tools, at run time on the tray
        'c2c|"c2c "*': None,
        "*--query-gpu=driver_version*": "".join(f"{view.driver}\n" for _ in range(view.n)),
    }
    if view.fusion_query:
        cases['-q|"-q "*|--query|"--query "*|"-x -q"*|"-i "*" -q"*'] = None
    delegate = 'exec python3 /opt/hilt-sim/fusion/tools.py nvidia-smi "$@"\n'
    body = "".join(f"  {pattern})\n{delegate if text is None else _heredoc(text)}    ;;\n"
                   for pattern, text in cases.items())
    return (
        "#!/bin/sh\n# nvidia-smi of a simulated node (hilt.sim.fabric_view): prints captured-format output.\n"
        f'case "$*" in\n{body}'
        # other views add outputs as files named by the arguments (hilt.sim.k8s_view: -q), as the base image's does
        "  *) f=/opt/hilt-sim/nvidia-smi/$(printf '%s_' \"$@\" | tr -c 'A-Za-z0-9_.=-' '_').txt\n"
        '     if [ -f "$f" ]; then cat "$f"; exit 0; fi\n'
        '     echo "nvidia-smi (simulated): unsupported arguments: $*" >&2; exit 2 ;;\nesac\n'
    )


_PYNVML = '''\
"""A stand-in for nvidia-ml-py on simulated nodes: the subset hilt's NVML collector calls, same names and
semantics, answering from nvml.json beside this file (written by hilt.sim.fabric_view)."""

import json
import os
from types import SimpleNamespace

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_NVLINK_MAX_LINKS = 18
NVML_NVLINK_ERROR_DL_REPLAY = 0
NVML_NVLINK_ERROR_DL_RECOVERY = 1
NVML_NVLINK_ERROR_DL_CRC_FLIT = 2
NVML_NVLINK_ERROR_DL_CRC_DATA = 3
NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_AGGREGATE_ECC = 1
NVML_FEATURE_DISABLED = 0
NVML_FEATURE_ENABLED = 1
_STRINGS = {1: "Uninitialized", 2: "Invalid Argument", 3: "Not Supported"}
_state = {"data": None}


class NVMLError(Exception):
    def __init__(self, value):
        self.value = value

    def __str__(self):
        return _STRINGS.get(self.value, "Unknown Error")


def _data():
    if _state["data"] is None:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return _state["data"]


def nvmlInit():
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "nvml.json")) as f:
        _state["data"] = json.load(f)


def nvmlShutdown():
    _data()
    _state["data"] = None


def nvmlSystemGetDriverVersion():
    return _data()["driver"]


def nvmlSystemGetNVMLVersion():
    return _data()["nvml_version"]


def nvmlDeviceGetCount():
    return len(_data()["gpus"])


def nvmlDeviceGetHandleByIndex(index):
    gpus = _data()["gpus"]
    if not 0 <= index < len(gpus):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return gpus[index]


def nvmlDeviceGetName(handle):
    return handle["name"]


def nvmlDeviceGetUUID(handle):
    return handle["uuid"]


def nvmlDeviceGetPciInfo(handle):
    return SimpleNamespace(busId=handle["pci_bus_id"], busIdLegacy=handle["pci_bus_id"][4:])


def nvmlDeviceGetVbiosVersion(handle):
    return handle["vbios"]


def nvmlDeviceGetInforomImageVersion(handle):
    if handle.get("inforom") is None:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return handle["inforom"]


def _link(handle, link):
    if not 0 <= link < len(handle["links"]):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return handle["links"][link]


def nvmlDeviceGetNvLinkState(handle, link):
    return NVML_FEATURE_ENABLED if _link(handle, link)["active"] else NVML_FEATURE_DISABLED


def nvmlDeviceGetNvLinkRemotePciInfo(handle, link):
    bus = _link(handle, link)["remote_pci_bus_id"]
    return SimpleNamespace(busId=bus, busIdLegacy=bus[4:])


def nvmlDeviceGetNvLinkErrorCounter(handle, link, counter):
    errors = _link(handle, link)["errors"]
    if not 0 <= counter < len(errors):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return errors[counter]


def nvmlDeviceGetTotalEccErrors(handle, error_type, counter_type):
    kind = {NVML_VOLATILE_ECC: "volatile", NVML_AGGREGATE_ECC: "aggregate"}[counter_type]
    return handle["ecc"][kind][error_type]


def nvmlDeviceGetRemappedRows(handle):
    return tuple(handle["row_remap"])
'''


def write_fabric_view(root: Path, profile: Profile, spec: dict[str, Any]) -> None:
    """Write the fabric files of a node booted from an image with this profile and fault spec under root."""
    view = FabricView(profile, spec or {})
    root = Path(root)
    write_file(root / "usr/local/bin/nvidia-smi", _nvidia_smi(view), 0o755)
    write_file(root / "usr/local/bin/dmesg", "#!/bin/sh\n" + _heredoc(view.kernel_log()), 0o755)
    write_file(root / "proc/driver/nvidia/version", view.proc_version())
    for i in range(view.n):
        write_file(root / f"proc/driver/nvidia/gpus/{view.bus(i)}/information", view.information(i))
    write_file(root / "sys/module/nvidia/version", view.driver + "\n")
    write_file(root / "opt/hilt-sim/python/pynvml.py", _PYNVML)
    write_file(root / "opt/hilt-sim/python/nvml.json", json.dumps(view.nvml(), indent=1))
    for i in range(view.n):
        for lk in range(view.links):
            state = "inactive" if (i, lk) in view.down else "active"
            write_file(root / f"sys/class/nvlink/gpu{i}-link{lk}/state", state + "\n")
    dt = profile.devicetree
    if dt is not None:
        base = root / "sys/firmware/devicetree/base"
        write_file(base / "compatible", encode_property(["hilt,sim-riscv-nvlink-fusion", "riscv-virtio"]))
        write_file(base / "model", encode_property(f"hilt simulated {profile.name}"))
        write_file(base / "name", b"\0")
        write_file(base / "#address-cells", encode_property([2]))
        write_file(base / dt.parent / "name", encode_property(dt.parent.rsplit("/", 1)[-1]))
        for k, (name, node) in enumerate(sorted(dt.nodes.items())):
            if name in view.dt_missing:
                continue
            write_file(base / dt.parent / name / "name", encode_property(name))
            if node.compatible:
                write_file(base / dt.parent / name / "compatible", encode_property([node.compatible, "nvidia,nvlink"]))
            write_file(base / dt.parent / name / "reg", encode_property([0, 0x6000_0000 + k * 0x1_0000, 0, 0x1_0000]))
            write_file(base / dt.parent / name / "nvidia,gpu-index", encode_property([k % view.n]))
            write_file(base / dt.parent / name / "status", encode_property("okay"))
