"""The copy probe through the coherent link: nvbandwidth's host<->device testcases as one metric per GPU.

On a Grace host every host<->device copy crosses NVLink-C2C, so `host_to_device_memcpy_ce` and
`device_to_host_memcpy_ce` measure each GPU's link to its CPU. nvbandwidth prints them as a one-row matrix (the
CPU) with a column per GPU; each column becomes `c2c.<testcase>{gpu=N}`, gated per node against the profile's
baselines (a slow link on one GPU of four hides in a SUM, not in its own series). Running nvbandwidth is
hilt.probes.dcgm_probe.run_nvbandwidth's; this module only turns its result into metrics (pure).
"""

from __future__ import annotations

from collections.abc import Sequence

from hilt.probes.errors import ProbeFailed
from hilt.probes.nvbandwidth import NvbandwidthResult
from hilt.record.metrics import Metric


def c2c_metrics(result: NvbandwidthResult, testcases: Sequence[str], node: str, gpu_count: int) -> list[Metric]:
    """`c2c.<testcase>` in GB/s per GPU (labels gpu, gpus); ProbeFailed naming the GPUs nvbandwidth printed no
    figure for (N/A, or fewer columns than the node has GPUs)."""
    metrics = []
    for name in testcases:
        matrix = result.testcases.get(name) or {}
        by_gpu = {col: value for (_, col), value in matrix.items()}
        missing = [g for g in range(gpu_count) if g not in by_gpu]
        if missing:
            raise ProbeFailed(f"{node}: nvbandwidth {name} printed no figure for GPU "
                              f"{', '.join(map(str, missing))} of {gpu_count}")
        for gpu, value in sorted(by_gpu.items()):
            metrics.append(Metric.of(f"c2c.{name}", "GB/s", [value],
                                     {"tool": "nvbandwidth", "node": node, "gpu": gpu, "gpus": gpu_count}))
    return metrics
