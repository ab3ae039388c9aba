"""GPU check on a machine with NVIDIA GPUs (a lent H200, or a rack node): the fabric parsers and the probes on
real hardware, through the same code paths the suites use, printing what they found.

Runs locally (no SSH): `python bench/gpu_check.py`. Prints the NVML collector's view, `nvidia-smi topo -m` and
`nvidia-smi nvlink -s` as parsed, the torch all-reduce (1 rank, NCCL), copy bandwidth (H2D, D2H, D2D; D2D next
to the H200's measured ceiling of about 4.3 TB/s and to nvbandwidth's own on-GPU copy figure), nvbandwidth and
`dcgmi diag -r 1` where installed (a line says so where not), and DDP numbers. Changes no GPU setting.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hilt.errors import ParseError  # noqa: E402
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
