"""From probe output to metrics: pure functions, no I/O.

Probe scripts print ``HILT_RESULT {json}`` lines (possibly behind torchrun's ``[host:0]:`` tee prefix, and
among NCCL/gloo chatter). The exit code of a gloo run is not trusted; these lines are.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping

from hilt.record.metrics import Metric

MARK = "HILT_RESULT "


def parse_result_lines(text: str) -> tuple[list[dict], list[str]]:
    """Return (records, bad_lines): every well-formed result record, and marked lines that did not decode."""
    records: list[dict] = []
    bad: list[str] = []
    for line in text.splitlines():
        at = line.find(MARK)
        if at < 0:
            continue
        try:
            value = json.loads(line[at + len(MARK):])
        except (ValueError, RecursionError):  # not JSON, an integer over 4,300 digits, or nested too deeply
            bad.append(line[:300])
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            bad.append(line)
    return records, bad


def bus_factor(world_size: int) -> float:
    """nccl-tests' all-reduce bus bandwidth factor 2(n-1)/n: what each link carries relative to the data."""
    return 2.0 * (world_size - 1) / world_size if world_size > 0 else 0.0


def _gbps(size_bytes: float, seconds: float) -> float:
    return size_bytes / seconds / 1e9 if seconds > 0 else 0.0


def common_labels(record: Mapping, nodes: int, node: str) -> dict[str, object]:
    labels: dict[str, object] = {"nodes": nodes, "gpus_per_node": 0 if record.get("backend") == "gloo"
                                 else record.get("local_world_size", 1),
                                 "backend": record.get("backend", "unknown"), "tool": "torch", "node": node}
    if record.get("nccl_version"):
        labels["nccl_version"] = record["nccl_version"]
    return labels


def allreduce_metrics(record: Mapping, nodes: int, node: str) -> list[Metric]:
    """torch.all_reduce.{algbw,busbw} in GB/s (1e9 bytes/s, as nccl-tests counts), one sample per repeat."""
    size = int(record["size"])
    world = int(record["world_size"])
    times = [float(t) for t in record["time_s"]]
    labels = common_labels(record, nodes, node) | {"size": size, "dtype": record.get("dtype", "float32"),
                                                   "ranks": world}
    algbw = [_gbps(size, t) for t in times]
    busbw = [a * bus_factor(world) for a in algbw]
    return [Metric.of("torch.all_reduce.algbw", "GB/s", algbw, labels),
            Metric.of("torch.all_reduce.busbw", "GB/s", busbw, labels),
            Metric.of("torch.all_reduce.time", "us", [t * 1e6 for t in times], labels, higher_is_better=False)]


def ddp_metrics(record: Mapping, nodes: int, node: str) -> list[Metric]:
    """Samples/s with synchronisation, communication time per step, and the gradient all-reduce's busbw.

    Communication per step = synced step time minus the median step time without sync (the compute).
    """
    world = int(record["world_size"])
    grad_bytes = int(record["grad_bytes"])
    synced = [float(t) for t in record["step_s"]]
    compute = statistics.median(float(t) for t in record["step_nosync_s"])
    labels = common_labels(record, nodes, node) | {"grad_mb": round(grad_bytes / 2**20, 1), "ranks": world}
    global_batch = int(record["batch"]) * world
    metrics = [
        Metric.of("ddp.samples_per_s", "samples/s", [global_batch / t for t in synced], labels),
        Metric.of("ddp.comm_ms_per_step", "ms", [max(0.0, (t - compute) * 1e3) for t in synced], labels,
                  higher_is_better=False),
    ]
    comm = [t - compute for t in synced if t - compute > 0]
    if world > 1 and comm:
        metrics.append(Metric.of("ddp.allreduce_busbw", "GB/s",
                                 [_gbps(grad_bytes, c) * bus_factor(world) for c in comm], labels))
    return metrics


def copy_metrics(records: list[Mapping], node: str) -> list[Metric]:
    out = []
    for r in records:
        if "kind" not in r:
            continue
        size = int(r["size"])
        labels = {"size": size, "node": node, "tool": "torch", "device": r.get("device_name", ""), "nodes": 1}
        out.append(Metric.of(f"copy.{r['kind']}", "GB/s", [_gbps(size, float(t)) for t in r["time_s"]], labels))
    return out
