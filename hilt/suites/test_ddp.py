"""What training feels: DDP step throughput and gradient communication, per node and lease-wide; copy bandwidth.

Copy bandwidth (H2D, D2H, D2D) matters most on single-GPU nodes, where all-reduce says little; it skips on
CPU-only nodes.
"""

from __future__ import annotations

import pytest

from hilt.probes import runner
from hilt.probes.errors import ProbeSkipped
from hilt.probes.settings import ProbeSettings
from hilt.probes.suite_support import NvlinkWatch, remeasurer


def _judge(metrics, probe, record_metric, release_gate) -> None:
    gated = ("ddp.samples_per_s", "ddp.allreduce_busbw")
    for metric in metrics:
        if metric.name not in gated:
            record_metric(metric)
    release_gate.check_all([m for m in metrics if m.name in gated], lambda m: remeasurer(m, probe))


@pytest.mark.probe("ddp.")
def test_ddp(node, probe_settings: ProbeSettings, record_metric, release_gate) -> None:
    s = probe_settings

    def probe() -> list:
        return runner.ddp([node], s.ddp_grad_mb, s.ddp_steps, s.timeout_s,
                          cpu_procs_per_node=s.cpu_procs_per_node).metrics

    with NvlinkWatch([node]) as watch:
        metrics = probe()
    _judge(metrics, probe, record_metric, release_gate)
    errors = watch.new_errors()
    if errors:
        pytest.fail("NVLink errors or DCGM health incidents during DDP:\n" + "\n".join(errors), pytrace=False)


@pytest.mark.probe("ddp.")
def test_ddp_across_lease(lease_nodes, lease_settings: ProbeSettings, record_metric, release_gate) -> None:
    if len(lease_nodes) < 2:
        pytest.skip(f"the lease holds {len(lease_nodes)} node; multi-node DDP needs two or more")
    s = lease_settings

    def probe() -> list:
        return runner.ddp(lease_nodes, s.ddp_grad_mb, s.ddp_steps, s.timeout_s,
                          cpu_procs_per_node=s.cpu_procs_per_node).metrics

    _judge(probe(), probe, record_metric, release_gate)


@pytest.mark.probe("copy.")
def test_copy_bandwidth(node, probe_settings: ProbeSettings, record_metric, release_gate) -> None:
    s = probe_settings

    def probe() -> list:
        return runner.run_copy_bandwidth(node, list(s.copy_sizes), s.repeats, timeout_s=s.timeout_s)

    try:
        metrics = probe()
    except ProbeSkipped as exc:
        pytest.skip(str(exc))
    release_gate.check_all(metrics, lambda m: remeasurer(m, probe))
