"""GPU check on a machine with NVIDIA GPUs (a lent H200, or a rack node): the fabric parsers and the probes on
real hardware, through the same code paths the suites use, printing what they found.

Runs locally (no SSH): `python bench/gpu_check.py`. Prints the NVML collector's view, `nvidia-smi topo -m` and
`nvidia-smi nvlink -s` as parsed, the coherent fabric as test_c2c / test_coherent_memory / test_nvlink_domain read
it (NVLink-C2C, Fabric / C2C Mode / Addressing Mode per GPU, NUMA nodes, IMEX; a GPU without C2C says so), the
torch all-reduce (1 rank, NCCL), copy bandwidth (H2D, D2H, D2D; D2D next to the H200's measured ceiling of about
4.3 TB/s and to nvbandwidth's own on-GPU copy figure), nvbandwidth and `dcgmi diag -r 1` where installed (a line
says so where not), and DDP numbers. Changes no GPU setting.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hilt.errors import NodeError, ParseError  # noqa: E402
from hilt.fabric.fusionread import FusionSnapshot, read_fusion_snapshot  # noqa: E402
from hilt.fabric.nvlink import parse_nvlink_status  # noqa: E402
from hilt.fabric.nvml import parse_nvml_report  # noqa: E402
from hilt.fabric.topo import parse_topology  # noqa: E402
from hilt.node.local import LocalNode  # noqa: E402
from hilt.probes import runner  # noqa: E402
from hilt.probes.dcgm_probe import DcgmIncomplete, judge_dcgm, run_dcgm_diag  # noqa: E402
from hilt.probes.errors import ProbeSkipped  # noqa: E402
from hilt.probes.nvbandwidth import parse_nvbandwidth  # noqa: E402
from hilt.profiles.model import DcgmSpec  # noqa: E402

D2D_CEILING_GBPS = 4300.0


def section(title: str) -> None:
    print(f"\n== {title}")


def main() -> int:
    if shutil.which("nvidia-smi") is None:
        print("nvidia-smi not found: this is not a GPU machine")
        return 2
    collector = Path(__file__).resolve().parents[1] / "hilt/fabric/scripts/collect_nvml.py"
    section("NVML collector")
    out = subprocess.run([sys.executable, str(collector)], capture_output=True, text=True)
    report = parse_nvml_report(out.stdout)
    print(json.dumps(json.loads(out.stdout), indent=1)[:4000])
    print(f"parsed: {len(report.gpus)} GPU(s)")
    section("nvidia-smi topo -m")
    text = subprocess.run(["nvidia-smi", "topo", "-m"], capture_output=True, text=True).stdout
    print(text)
    topo = parse_topology(text)
    print(f"parsed: gpus={topo.gpus} nics={topo.nics} cpu_affinity={topo.cpu_affinity} numa={topo.numa_affinity}")
    section("nvidia-smi nvlink -s")
    text = subprocess.run(["nvidia-smi", "nvlink", "-s"], capture_output=True, text=True).stdout
    print(text[:3000])
    for gpu in parse_nvlink_status(text):
        active = [link.index for link in gpu.links if link.active]
        print(f"parsed: GPU {gpu.index} {gpu.name}: {len(active)}/{len(gpu.links)} links active, "
              f"speeds {sorted({link.speed_gbps for link in gpu.links if link.active})}")
    node = LocalNode("local")
    fusion_check(read_fusion_snapshot(node, imex=shutil.which("nvidia-imex-ctl") is not None))
    section("torch all-reduce (NCCL, 1 rank per GPU)")
    for metric in runner.run_torch_allreduce([node], [2**20, 2**26, 2**30], 5, 2, 300):
        if metric.name.endswith("busbw"):
            print(f"{metric.key}: mean {metric.mean:.2f} {metric.unit} samples {[round(s, 2) for s in metric.samples]}")
    section("copy bandwidth")
    d2d: dict[str, float] = {}
    for metric in runner.run_copy_bandwidth(node, [2**26, 2**30], 5):
        extra = ""
        if "d2d" in metric.name:
            d2d[metric.label_dict.get("size", "?")] = metric.mean
            extra = f"  (ceiling ~{D2D_CEILING_GBPS:.0f} GB/s: {metric.mean / D2D_CEILING_GBPS:.0%})"
        print(f"{metric.key}: mean {metric.mean:.1f} {metric.unit}{extra}")
    nvbandwidth_check(d2d)
    dcgm_check(node)
    section("DDP")
    for metric in runner.run_ddp([node], 64, 10, 300):
        print(f"{metric.key}: mean {metric.mean:.2f} {metric.unit}")
    return 0


def _view(what: str, read):  # noqa: ANN001, ANN202 - a FusionSnapshot reader and what it returns
    """Run one of the snapshot's readers; print why where it cannot answer (None then)."""
    try:
        return read()
    except (NodeError, ParseError) as exc:
        print(f"{what}: not read: {exc}")
        return None


def fusion_check(snap: FusionSnapshot) -> None:
    """The coherent fabric through the suites' own reader (hilt.fabric.fusionread), parsed as they parse it."""
    section("NVLink-C2C (nvidia-smi c2c -s)")
    print(snap.raw("c2c")[:1500].rstrip())
    c2c = _view("nvidia-smi c2c -s", snap.c2c)
    if c2c == {}:
        print("parsed: no C2C on this host: nvidia-smi says 'No Devices support C2C.' (the GPU reaches its CPU over "
              "PCIe; a Grace Hopper/Blackwell host lists its C2C links here)")
    for index, gpu in sorted((c2c or {}).items()):
        speeds = sorted({s for s in gpu.links.values() if s is not None})
        print(f"parsed: GPU {index} {gpu.name}: {len(gpu.active)}/{len(gpu.links)} C2C links active, speeds {speeds}")
    section("nvidia-smi -q -x: Fabric, C2C Mode, Addressing Mode")
    for index, q in enumerate(_view("nvidia-smi -q -x", snap.gpu_queries) or []):
        fabric = q.fabric
        where = (f"fabric {fabric.state}/{fabric.status}, clique {fabric.clique_id}, ClusterUUID "
                 f"{fabric.cluster_uuid}, health {fabric.health}" if fabric else "no Fabric section")
        print(f"parsed: GPU {index} {q.product} ({q.pci_bus_id}): Addressing Mode {q.addressing_mode or 'not printed'},"
              f" GPU C2C Mode {q.c2c_mode or 'not printed'}; {where}")
    section("NUMA nodes (numactl -H, else /sys/devices/system/node)")
    for n in _view("NUMA nodes", snap.numa) or []:
        cpus = f"CPUs {n.cpus[0]}-{n.cpus[-1]} ({len(n.cpus)})" if n.cpus else "no CPUs (memory only)"
        print(f"parsed: node {n.id}: {cpus}, {n.memory_mb if n.memory_mb is not None else '?'} MB")
    print(f"GPU NUMA ID per GPU (topo -m): {_view('nvidia-smi topo -m', snap.gpu_numa_ids)}")
    section("IMEX (nvidia-imex-ctl -N)")
    if "imex" not in snap.sections:
        print("nvidia-imex-ctl not installed: this host is in no multi-node NVLink domain")
        return
    imex = _view("nvidia-imex-ctl -N", snap.imex)
    if imex is not None:
        print(f"parsed: Domain State {imex.domain_state}, {len(imex.nodes)} nodes "
              f"{[(n.index, n.address, n.status) for n in imex.nodes]}")


def nvbandwidth_check(copy_d2d: dict[str, float]) -> None:
    """nvbandwidth's full run parsed by hilt's parser; its on-GPU copy figure printed next to hilt's D2D probe."""
    section("nvbandwidth")
    if shutil.which("nvbandwidth") is None:
        print("nvbandwidth not installed: skipped (build it from github.com/NVIDIA/nvbandwidth to compare)")
        return
    out = subprocess.run(["nvbandwidth"], capture_output=True, text=True, timeout=150)
    try:
        result = parse_nvbandwidth(out.stdout)
    except ParseError as exc:
        print(f"nvbandwidth (exit {out.returncode}) output not parsed: {exc}\n{out.stdout[-2000:]}{out.stderr[-1000:]}")
        return
    print(f"version {result.version}; waived {len(result.waived) + result.unnamed_waived}; errors {result.errors}")
    for name, total in result.sums.items():
        print(f"SUM {name}: {total:.2f} GB/s")
    for name, matrix in result.latencies.items():
        print(f"latency {name}: {sorted(matrix.values())[:4]} ns")
    # hilt's copy.d2d is a copy within GPU 0: nvbandwidth's device_local_copy measures the same thing;
    # device_to_device_memcpy_read_ce (between GPUs) only exists with two or more GPUs.
    local = result.total("device_local_copy")
    local_0 = (result.testcases.get("device_local_copy") or {}).get((0, 0))
    for size, mean in sorted(copy_d2d.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0):
        theirs = local_0 if local_0 is not None else local
        ratio = f" ({mean / theirs:.0%} of nvbandwidth)" if theirs else ""
        print(f"D2D copy probe size={size}: {mean:.1f} GB/s | nvbandwidth device_local_copy GPU 0: "
              f"{theirs if theirs is not None else 'not printed'} GB/s{ratio}")
    pair = result.total("device_to_device_memcpy_read_ce")
    if pair is not None:
        print(f"nvbandwidth device_to_device_memcpy_read_ce SUM (between GPUs): {pair:.2f} GB/s")


def dcgm_check(node: LocalNode) -> None:
    """`dcgmi diag -r 1 -j` through the suite's own code path (hilt.probes.dcgm_probe)."""
    section("dcgmi diag -r 1")
    if shutil.which("dcgmi") is None:
        print("dcgmi not installed: skipped (DCGM is not on this machine)")
        return
    try:
        diag = run_dcgm_diag(node, 1, timeout_s=120)
    except (DcgmIncomplete, ProbeSkipped) as exc:
        print(f"DCGM did not complete (is nv-hostengine running?): {exc}")
        return
    print(f"DCGM {diag.version}, driver {diag.driver}: passed={diag.passed} failed={diag.failed}")
    for t in diag.tests:
        print(f"  {t.category}/{t.name}: {t.result} gpus={t.gpus} {t.messages[:2]}")
    print("judged with the defaults (no warn/skip allowed):", judge_dcgm(diag, DcgmSpec(level=1)) or "no problem")


if __name__ == "__main__":
    raise SystemExit(main())
