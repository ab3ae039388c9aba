"""GPU check on a machine with NVIDIA GPUs (a lent H200, or a rack node): the fabric parsers and the probes on
real hardware, through the same code paths the suites use, printing what they found.

Runs locally (no SSH): `python bench/gpu_check.py`. Prints the NVML collector's view, `nvidia-smi topo -m` and
`nvidia-smi nvlink -s` as parsed, the torch all-reduce (1 rank, NCCL), copy bandwidth (H2D, D2H, D2D; D2D next
to the H200's measured ceiling of about 4.3 TB/s) and DDP numbers. Changes no GPU setting.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hilt.fabric.nvlink import parse_nvlink_status  # noqa: E402
from hilt.fabric.nvml import parse_nvml_report  # noqa: E402
from hilt.fabric.topo import parse_topology  # noqa: E402
from hilt.probes import runner  # noqa: E402
from tests.probes.localnode import LocalNode  # noqa: E402

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
    for metric in runner.run_copy_bandwidth(node, [2**26, 2**30], 5):
        extra = ""
        if "d2d" in metric.name:
            extra = f"  (ceiling ~{D2D_CEILING_GBPS:.0f} GB/s: {metric.mean / D2D_CEILING_GBPS:.0%})"
        print(f"{metric.key}: mean {metric.mean:.1f} {metric.unit}{extra}")
    section("DDP")
    for metric in runner.run_ddp([node], 64, 10, 300):
        print(f"{metric.key}: mean {metric.mean:.2f} {metric.unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
