#!/usr/bin/env python3
"""The NVLink Fusion tools of a simulated node: `nvidia-smi c2c -s`, `nvidia-smi -q` (text and `-x` XML),
`nvidia-imex-ctl -N` (text and `-j`) and `numactl -H`, printing the real tools' formats.

This file is copied into sim images as /opt/hilt-sim/fusion/tools.py and runs on the node with the node's
own python3, so it imports nothing but the standard library. What it prints comes from ``view.json`` beside it
(written by :mod:`hilt.sim.fusion_view` when the image was built) and from ``/opt/hilt-sim/platform.json``
(written by the machine at boot: the tray's index and the addresses of the trays in its NVLink domain, the
facts a real tray knows from its chassis slot and its IMEX node config). A fault that belongs to one tray (a
GPU whose fabric is still training, a tray cabled into another clique) is declared by the image per tray index
and applied here, on the tray that has that index; what the image declares for every node is already in the view.

Formats (captures in tests/data/corpus/c2c_mnnvl, SOURCES.md there): `c2c -s` is `nvlink -s`'s layout with
"C2C Link N"; `-q` nests by 4 spaces with the key column padded to 42 characters before driver 580 and to 55
from 580 on (Fabric Health grows from Bandwidth alone to seven rows there); `-q -x` is nvsmi_device_v13 XML,
tab-indented; `nvidia-imex-ctl -N` is IMEX 570+'s legend, node table with version column, 4-character matrix
cells and "Domain State"; `numactl -H` is numactl 2.0's.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
PLATFORM = os.environ.get("HILT_SIM_PLATFORM", "/opt/hilt-sim/platform.json")

IMEX_LEGEND = """Connectivity Table Legend:
I - Invalid - Node wasn't reachable, no connection status available
N - Never Connected
R - Recovering - Connection was lost, but clean up has not yet been triggered.
D - Disconnected - Connection was lost, and clean up has been triggreed.
A - Authenticating - If GSSAPI enabled, client has initiated mutual authentication.
!V! - Version mismatch, communication disabled.
!M! - Node map mismatch, communication disabled.
C - Connected - Ready for operation
"""


def load() -> dict[str, Any]:
    """The view with this tray's declared faults applied (``by_tray[<tray_index>]``)."""
    with open(os.path.join(HERE, "view.json")) as fh:
        view = json.load(fh)
    platform: dict[str, Any] = {}
    if os.path.exists(PLATFORM):
        with open(PLATFORM) as fh:
            platform = json.load(fh)
    view["platform"] = platform
    tray = (view.get("by_tray") or {}).get(str(platform.get("tray_index", 0))) or {}
    view = apply_tray(view, tray)
    return view


def apply_tray(view: dict[str, Any], tray: dict[str, Any]) -> dict[str, Any]:
    """``tray``: ``clique_id`` / ``cluster_uuid`` (every GPU of the tray), ``fabric_by_gpu`` ({gpu: {field: value}})."""
    view = copy.deepcopy(view)
    for gpu in view["gpus"]:
        fabric = gpu.get("fabric")
        if fabric is None:
            continue
        for key in ("clique_id", "cluster_uuid"):
            if key in tray:
                fabric[key] = tray[key]
        fabric.update((tray.get("fabric_by_gpu") or {}).get(str(gpu["index"]), {}))
    return view


# ---------------------------------------------------------------------------------------------- nvidia-smi c2c
def c2c_status(view: dict[str, Any]) -> tuple[str, int]:
    """`nvidia-smi c2c -s`; a GPU without C2C links prints nothing, a node without any prints the one line."""
    out = []
    for gpu in view["gpus"]:
        if not gpu.get("c2c"):
            continue
        out.append(f"GPU {gpu['index']}: {gpu['name']} (UUID: {gpu['uuid']})")
        for link, speed in enumerate(gpu["c2c"]):
            out.append(f"\t C2C Link {link}: " + ("<inactive>" if speed is None else f"{speed:.3f} GB/s"))
    if not out:
        return "No Devices support C2C.\n", 3
    return "\n".join(out) + "\n", 0


# ---------------------------------------------------------------------------------------------- nvidia-smi -q
def _na(value: Any) -> str:
    return "N/A" if value is None else str(value)


def _health_rows(view: dict[str, Any], fabric: dict[str, Any] | None) -> list[tuple[str, str]]:
    health = (fabric or {}).get("health") or {}
    if view["driver_major"] < 580:
        return [("Bandwidth", _na(health.get("Bandwidth")))]
    names = ["Summary", "Bandwidth", "Route Recovery in progress", "Route Unhealthy", "Access Timeout Recovery",
             "Incorrect Configuration", "Partition Assigned"]
    return [(n, _na(health.get(n))) for n in names]


def _gpu_tree(view: dict[str, Any], gpu: dict[str, Any]) -> list[Any]:
    fabric = gpu.get("fabric")
    f = fabric or {}
    tree: list[Any] = [
        ("Product Name", gpu["name"]), ("Product Brand", "NVIDIA"), ("Product Architecture", gpu["architecture"]),
        ("Display Mode", "Requested functionality has been deprecated" if view["driver_major"] >= 580 else "Enabled"),
        ("Display Active", "Disabled"), ("Persistence Mode", "Enabled"),
        ("Addressing Mode", view["addressing_mode"]),
        ("MIG Mode", [("Current", "Disabled"), ("Pending", "Disabled")]),
        ("Accounting Mode", "Disabled"), ("Accounting Mode Buffer Size", "4000"),
        ("Driver Model", [("Current", "N/A"), ("Pending", "N/A")]),
        ("Serial Number", gpu["serial"]), ("GPU UUID", gpu["uuid"]), ("Minor Number", str(gpu["index"])),
        ("VBIOS Version", gpu["vbios"]), ("MultiGPU Board", "No"), ("Board ID", gpu["board_id"]),
        ("Board Part Number", gpu["board_part"]), ("GPU Part Number", gpu["gpu_part"]), ("FRU Part Number", "N/A"),
    ]
    platform = view.get("platform") or {}
    if view["driver_major"] >= 580 and gpu.get("tray"):
        tray = gpu["tray"]
        tree.append(("Platform Info", [
            ("Chassis Serial Number", tray["chassis_serial"]),
            ("Slot Number", str(platform.get("slot_number", tray["slot_number"]))),
            ("Tray Index", str(platform.get("tray_index", 0))), ("Host ID", "1"),
            ("Peer Type", "Switch Connected"), ("Module Id", str(gpu["module_id"])),
            ("GPU Fabric GUID", gpu["fabric_guid"])]))
    else:
        tree.append(("Module ID", str(gpu["module_id"])))
    tree += [
        ("GPU Operation Mode", [("Current", "N/A"), ("Pending", "N/A")]),
        ("GPU C2C Mode", view["c2c_mode"]),
        ("GPU Virtualization Mode", [("Virtualization Mode", "None"), ("Host VGPU Mode", "N/A"),
                                     ("vGPU Heterogeneous Mode", "N/A")]),
        ("GSP Firmware Version", view["driver"]),
        ("PCI", [("Bus", "0x" + gpu["bus_id"][9:11].upper()), ("Device", "0x00"),
                 ("Domain", "0x" + gpu["bus_id"][4:8].upper()), ("Device Id", gpu["device_id"]),
                 ("Bus Id", gpu["bus_id"])]),
        ("Performance State", "P0"),
        ("FB Memory Usage", [("Total", f"{gpu['fb_mib']} MiB"), ("Reserved", f"{gpu['fb_reserved_mib']} MiB"),
                             ("Used", "1 MiB"), ("Free", f"{gpu['fb_mib'] - gpu['fb_reserved_mib'] - 1} MiB")]),
        ("Fabric", [("State", _na(f.get("state"))), ("Status", _na(f.get("status"))),
                    ("CliqueId", _na(f.get("clique_id"))), ("ClusterUUID", _na(f.get("cluster_uuid"))),
                    ("Health", _health_rows(view, fabric))]),
        ("Processes", "None"),
    ]
    return tree


def _text(tree: list[Any], indent: int, width: int, out: list[str]) -> None:
    for key, value in tree:
        label = " " * indent + key
        if isinstance(value, list):
            out.append(label)
            _text(value, indent + 4, width, out)
        else:
            out.append(f"{label:<{width}}: {value}")


def _selected(view: dict[str, Any], ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return view["gpus"]
    chosen = []
    for wanted in ids:
        match = [g for g in view["gpus"] if wanted in (str(g["index"]), g["uuid"], g["bus_id"])]
        if not match:
            raise LookupError(f"No devices were found (no GPU matches '{wanted}')")
        chosen += match
    return chosen


def query_text(view: dict[str, Any], ids: list[str]) -> str:
    width = 42 if view["driver_major"] < 580 else 55
    out = ["", "==============NVSMI LOG==============", ""]
    header = [("Timestamp", time.strftime("%a %b %d %H:%M:%S %Y")), ("Driver Version", view["driver"]),
              ("CUDA Version", view["cuda"])]
    _text(header, 0, width, out)
    out.append("")
    _text([("Attached GPUs", str(len(view["gpus"])))], 0, width, out)
    for gpu in _selected(view, ids):
        out.append(f"GPU {gpu['bus_id']}")
        _text(_gpu_tree(view, gpu), 4, width, out)
        out.append("")
    return "\n".join(out) + "\n"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml(tree: list[Any], depth: int, out: list[str]) -> None:
    for tag, value in tree:
        pad = "\t" * depth
        if isinstance(value, list):
            out.append(f"{pad}<{tag}>")
            _xml(value, depth + 1, out)
            out.append(f"{pad}</{tag}>")
        else:
            out.append(f"{pad}<{tag}>{_xml_escape(_na(value))}</{tag}>")


def _gpu_xml(view: dict[str, Any], gpu: dict[str, Any]) -> list[Any]:
    f = gpu.get("fabric") or {}
    platform = view.get("platform") or {}
    tree: list[Any] = [
        ("product_name", gpu["name"]), ("product_brand", "NVIDIA"), ("product_architecture", gpu["architecture"]),
        ("persistence_mode", "Enabled"), ("addressing_mode", view["addressing_mode"]),
        ("mig_mode", [("current_mig", "Disabled"), ("pending_mig", "Disabled")]),
        ("serial", gpu["serial"]), ("uuid", gpu["uuid"]), ("minor_number", str(gpu["index"])),
        ("vbios_version", gpu["vbios"]), ("multigpu_board", "No"), ("board_id", gpu["board_id"]),
        ("board_part_number", gpu["board_part"]), ("gpu_part_number", gpu["gpu_part"]),
    ]
    if gpu.get("tray"):
        tree.append(("platformInfo", [
            ("chassis_serial_number", gpu["tray"]["chassis_serial"]),
            ("slot_number", str(platform.get("slot_number", gpu["tray"]["slot_number"]))),
            ("tray_index", str(platform.get("tray_index", 0))), ("host_id", "1"), ("peer_type", "Switch Connected"),
            ("module_id", str(gpu["module_id"])), ("gpu_fabric_guid", gpu["fabric_guid"])]))
    tree += [
        ("c2c_mode", view["c2c_mode"]),
        ("gsp_firmware_version", view["driver"]),
        ("pci", [("pci_bus", gpu["bus_id"][9:11].upper()), ("pci_device", "00"),
                 ("pci_domain", gpu["bus_id"][4:8].upper()), ("pci_device_id", gpu["device_id"][2:]),
                 ("pci_bus_id", gpu["bus_id"])]),
        ("performance_state", "P0"),
        ("fb_memory_usage", [("total", f"{gpu['fb_mib']} MiB"), ("reserved", f"{gpu['fb_reserved_mib']} MiB"),
                             ("used", "1 MiB"), ("free", f"{gpu['fb_mib'] - gpu['fb_reserved_mib'] - 1} MiB")]),
    ]
    xml_health = {"Summary": "summary", "Bandwidth": "bandwidth",
                  "Route Recovery in progress": "route_recovery_in_progress", "Route Unhealthy": "route_unhealthy",
                  "Access Timeout Recovery": "access_timeout_recovery",
                  "Incorrect Configuration": "incorrect_configuration", "Partition Assigned": "partition_assigned"}
    rows = [(xml_health[name], value) for name, value in _health_rows(view, gpu.get("fabric"))]
    tree += [
        ("fabric", [("state", _na(f.get("state"))), ("status", _na(f.get("status"))),
                    ("cliqueId", _na(f.get("clique_id"))), ("clusterUuid", _na(f.get("cluster_uuid"))),
                    ("health", [(tag, health_value) for tag, health_value in rows])]),
        ("processes", []),
        ("capabilities", [("egm", "disabled")]),
    ]
    return tree


def query_xml(view: dict[str, Any], ids: list[str]) -> str:
    out = ['<?xml version="1.0" ?>', '<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v13.dtd">', "<nvidia_smi_log>"]
    _xml([("timestamp", time.strftime("%a %b %d %H:%M:%S %Y")), ("driver_version", view["driver"]),
          ("cuda_version", view["cuda"]), ("attached_gpus", str(len(view["gpus"])))], 1, out)
    for gpu in _selected(view, ids):
        out.append(f'\t<gpu id="{gpu["bus_id"]}">')
        _xml(_gpu_xml(view, gpu), 2, out)
        out.append("\t</gpu>")
        out.append("")
    out.append("</nvidia_smi_log>")
    return "\n".join(out) + "\n"


def nvidia_smi(argv: list[str]) -> int:
    view = load()
    if argv[:1] == ["c2c"]:
        if len(argv) == 2 and argv[1] in ("-s", "--status"):
            text, code = c2c_status(view)
            sys.stdout.write(text)
            return code
        sys.stderr.write(f"nvidia-smi c2c (simulated): unsupported arguments: {' '.join(argv[1:])}\n")
        return 2
    query = xml = False
    ids: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in ("-q", "--query"):
            query = True
        elif arg in ("-x", "--xml-format"):
            xml = True
        elif arg in ("-i", "--id"):
            ids += next(args, "").split(",")
        elif arg.startswith("--id="):
            ids += arg.split("=", 1)[1].split(",")
        else:
            sys.stderr.write(f"nvidia-smi (simulated): unsupported argument: {arg}\n")
            return 2
    if not query:
        sys.stderr.write("nvidia-smi (simulated): unsupported arguments: " + " ".join(argv) + "\n")
        return 2
    try:
        sys.stdout.write(query_xml(view, ids) if xml else query_text(view, ids))
    except LookupError as exc:
        sys.stdout.write(f"{exc}\n")
        return 6
    return 0


# ---------------------------------------------------------------------------------------------- nvidia-imex-ctl
def imex_domain(view: dict[str, Any]) -> tuple[list[tuple[str, str, str | None]], dict[tuple[int, int], str], str]:
    """(nodes as (address, status, version), matrix code per (from, to), domain state)."""
    imex = view["imex"]
    addresses = (view.get("platform") or {}).get("domain") or ["127.0.0.1"]
    down = {int(i) for i in imex.get("down", []) if int(i) < len(addresses)}
    nodes = [(a, "UNAVAILABLE" if i in down else "READY", None if i in down else imex["version"])
             for i, a in enumerate(addresses)]
    matrix = {(a, b): "N" if (a in down or b in down) else "C"
              for a in range(len(addresses)) for b in range(len(addresses))}
    return nodes, matrix, "DEGRADED" if down else "UP"


def _imex_timestamp() -> str:
    now = time.time()
    t = time.localtime(now)
    return f"{t.tm_mon}/{t.tm_mday}/{t.tm_year} {time.strftime('%H:%M:%S', t)}.{int(now * 1000) % 1000:03d}"


def imex_text(view: dict[str, Any]) -> str:
    nodes, matrix, state = imex_domain(view)
    out = [IMEX_LEGEND, _imex_timestamp(), "Nodes:"]
    for i, (address, status, version) in enumerate(nodes):
        out.append(f"Node #{i:<4}- {address:<16}- {status:<21}- Version: {version or ''}")
    out.append("")
    out.append(" Nodes From\\To  " + "".join(f"{i:<4}" for i in range(len(nodes))).rstrip())
    for a in range(len(nodes)):
        out.append(f"{a:>8}        " + "   ".join(matrix[(a, b)] for b in range(len(nodes))))
    out.append("")
    out.append(f"Domain State: {state}")
    return "\n".join(out) + "\n"


def imex_json(view: dict[str, Any]) -> str:
    nodes, matrix, state = imex_domain(view)
    names = {"C": "CONNECTED", "N": "NEVER_CONNECTED"}
    doc = {"nodes": {}, "timestamp": _imex_timestamp(), "status": state}
    for i, (address, status, version) in enumerate(nodes):
        doc["nodes"][str(i)] = {
            "status": status, "host": address, "changed": True, "version": version or "", "hostName": "",
            "connections": {str(j): {"host": nodes[j][0], "status": names[matrix[(i, j)]], "changed": True}
                            for j in range(len(nodes)) if j != i}}
    return json.dumps(doc, indent="\t") + "\n"


def imex_ctl(argv: list[str]) -> int:
    view = load()
    if not view.get("imex"):
        sys.stderr.write("nvidia-imex-ctl: failed to connect to the IMEX daemon: IMEX is not installed on this "
                         "node's image (hilt sim)\n")
        return 1
    flags = set(argv)
    if "-N" not in flags or not flags <= {"-N", "-j"}:
        sys.stderr.write("nvidia-imex-ctl (simulated): supported: -N, -N -j; got " + " ".join(argv) + "\n")
        return 2
    sys.stdout.write(imex_json(view) if "-j" in flags else imex_text(view))
    return 0


# ---------------------------------------------------------------------------------------------- numactl
def numactl(argv: list[str]) -> int:
    if argv not in (["-H"], ["--hardware"]):
        sys.stderr.write("numactl (simulated): supported: -H / --hardware; got " + " ".join(argv) + "\n")
        return 2
    view = load()
    nodes = view["numa"]["nodes"]
    ids = [n["id"] for n in nodes]
    span = f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else f"{ids[0]}"
    out = [f"available: {len(nodes)} nodes ({span})"]
    for n in nodes:
        cpus = " ".join(str(c) for c in n["cpus"])
        out.append(f"node {n['id']} cpus:" + (f" {cpus}" if cpus else ""))
        out.append(f"node {n['id']} size: {n['size_mb']} MB")
        out.append(f"node {n['id']} free: {n['free_mb']} MB")
    out.append("node distances:")  # numactl 2.0.16 (Debian 12): printf("% 3d ") per cell, trailing space kept
    out.append("node " + "".join(f"{i:>3} " for i in ids))
    for n in nodes:
        out.append(f"{n['id']:>3}: " + "".join(f"{d:>3} " for d in n["distances"]))
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def main(argv: list[str]) -> int:
    tools = {"nvidia-smi": nvidia_smi, "nvidia-imex-ctl": imex_ctl, "numactl": numactl}
    if not argv or argv[0] not in tools:
        sys.stderr.write(f"usage: tools.py {{{','.join(tools)}}} ARGS...\n")
        return 2
    return tools[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
