"""Comparisons of what a node shows against its profile.

Each returns a list of differences, one sentence each, that a person understands without the raw output
("GPU3-GPU5: expected NV18, found NV12"); an empty list means the node matches.
"""

from __future__ import annotations

from collections.abc import Sequence

from hilt.fabric.devicetree import DeviceTree
from hilt.fabric.nvlink import GpuErrors, GpuLinks
from hilt.fabric.nvml import NvmlReport
from hilt.fabric.procinfo import GpuInformation
from hilt.fabric.topo import Topology
from hilt.profiles.model import Profile


def compare_topology(profile: Profile, topo: Topology) -> list[str]:
    diffs: list[str] = []
    if len(topo.gpus) != profile.gpu_count:
        diffs.append(f"GPU count: expected {profile.gpu_count}, found {len(topo.gpus)}")
    present = {int(g[3:]) for g in topo.gpus}
    for a, b in profile.gpu_pairs():
        if a in present and b in present:
            expected, found = profile.expected_link(a, b), topo.link(a, b)
            if found != expected:
                diffs.append(f"GPU{a}-GPU{b}: expected {expected}, found {found}")
    for gpu, nics in (profile.nic_locality or {}).items():
        for nic, expected in nics.items():
            try:
                found = topo.link(gpu, nic)
            except KeyError:
                diffs.append(f"{gpu}-{nic}: expected {expected}, found no such device in the matrix")
                continue
            if found != expected:
                diffs.append(f"{gpu}-{nic}: expected {expected}, found {found}")
    return diffs


def compare_nvlink(profile: Profile, status: Sequence[GpuLinks]) -> list[str]:
    spec = profile.nvlink
    want = spec.active_links_per_gpu
    diffs: list[str] = []
    if len(status) != profile.gpu_count:
        diffs.append(f"GPU count: expected {profile.gpu_count}, found {len(status)} in nvlink status")
    for gpu in status:
        active = [lk for lk in gpu.links if lk.active]
        if len(active) < want:
            inactive = [lk.index for lk in gpu.links if not lk.active and lk.index not in spec.inactive_links]
            for index in inactive:
                diffs.append(f"GPU{gpu.index} link {index} inactive (expected {want} active)")
            if len(gpu.links) < want:
                diffs.append(f"GPU{gpu.index}: {len(gpu.links)} links reported (expected {want} active)")
            elif not inactive:
                diffs.append(f"GPU{gpu.index}: {len(active)} links active (expected {want})")
        elif len(active) > want:
            diffs.append(f"GPU{gpu.index}: {len(active)} links active (expected {want})")
        if spec.min_link_speed_gbps is not None:
            for lk in active:
                if lk.speed_gbps is not None and lk.speed_gbps < spec.min_link_speed_gbps:
                    diffs.append(
                        f"GPU{gpu.index} link {lk.index}: {lk.speed_gbps:g} GB/s, "
                        f"below the minimum {spec.min_link_speed_gbps:g} GB/s"
                    )
    return diffs


def compare_devicetree(profile: Profile, dt: DeviceTree | None) -> list[str]:
    spec = profile.devicetree
    if spec is None:
        return []
    expected = sorted(spec.nodes)
    parent = dt.node(spec.parent) if dt is not None else None
    if parent is None:
        return [f"device tree: /{spec.parent} missing (expected {', '.join(expected)})"]
    children = {node.name: node for node in dt.children(spec.parent)}  # type: ignore[union-attr]
    diffs: list[str] = []
    for name in expected:
        node = children.get(name)
        if node is None:
            diffs.append(f"device tree: {name} missing")
            continue
        want = spec.nodes[name].compatible
        if want is not None and want not in node.compatible:
            found = ", ".join(node.compatible) or "none"
            diffs.append(f"device tree: {name} compatible: expected {want}, found {found}")
    for name in sorted(children):
        if name.startswith(spec.node_prefix) and name not in spec.nodes:
            diffs.append(f"device tree: unexpected node {name}")
    return diffs


def compare_inventory(
    profile: Profile,
    *,
    driver: str | None = None,
    gpus: Sequence[GpuInformation] = (),
) -> list[str]:
    """The driver version and the GPUs the driver sees (from /proc/driver/nvidia)."""
    diffs: list[str] = []
    if profile.driver is not None and driver != profile.driver:
        diffs.append(f"driver: expected {profile.driver}, found {driver or 'no driver loaded'}")
    if len(gpus) != profile.gpu_count:
        diffs.append(f"GPU count: expected {profile.gpu_count}, found {len(gpus)} in /proc/driver/nvidia/gpus")
    for info in gpus:
        where = info.bus_location or info.uuid or "?"
        if profile.gpu_name is not None and info.model != profile.gpu_name:
            diffs.append(f"GPU {where}: expected model {profile.gpu_name}, found {info.model}")
        if info.excluded:
            diffs.append(f"GPU {where}: excluded by the driver")
    return diffs


def compare_nvml(profile: Profile, report: NvmlReport) -> list[str]:
    """What NVML sees: GPU count, model, uncorrectable ECC and row-remap trouble.

    Link state is left to compare_nvlink, so that one fault fails one suite.
    """
    if report.error:
        return [f"NVML: {report.error}"]
    diffs: list[str] = []
    if len(report.gpus) != profile.gpu_count:
        diffs.append(f"GPU count: expected {profile.gpu_count}, found {len(report.gpus)} through NVML")
    for gpu in report.gpus:
        name = f"GPU{gpu.index} ({gpu.pci_bus_id})"
        if profile.gpu_name is not None and gpu.name != profile.gpu_name:
            diffs.append(f"{name}: expected model {profile.gpu_name}, found {gpu.name}")
        if gpu.ecc and gpu.ecc.volatile.uncorrected:
            diffs.append(f"{name}: {gpu.ecc.volatile.uncorrected} uncorrectable ECC errors since boot")
        if gpu.row_remap and gpu.row_remap.failure:
            diffs.append(f"{name}: row remapping failed (the GPU needs service)")
        elif gpu.row_remap and gpu.row_remap.pending:
            diffs.append(f"{name}: row remap pending (reset the GPU)")
    return diffs


def check_error_delta(before: Sequence[GpuErrors], after: Sequence[GpuErrors], crc_threshold: int = 100) -> list[str]:
    """NVLink errors that appeared between two readings: any recovery, or CRC above the threshold, fails.

    The default of 100 CRC errors is DCGM's NVLink CRC threshold; replays alone are corrected in hardware.
    """
    old = {(g.index, lk.index): lk for g in before for lk in g.links}
    diffs: list[str] = []
    for gpu in after:
        for lk in gpu.links:
            prev = old.get((gpu.index, lk.index))
            recovery = lk.recovery - (prev.recovery if prev else 0)
            crc = lk.crc - (prev.crc if prev else 0)
            if recovery > 0:
                diffs.append(f"GPU{gpu.index} link {lk.index}: {recovery} recovery errors during the run")
            if crc > crc_threshold:
                where = f"GPU{gpu.index} link {lk.index}"
                diffs.append(f"{where}: {crc} CRC errors during the run (threshold {crc_threshold})")
    return diffs
