"""What training feels: DDP step throughput and gradient communication, per node and lease-wide; copy bandwidth.

Copy bandwidth (H2D, D2H, D2D) matters most on single-GPU nodes, where all-reduce says little; it skips on
CPU-only nodes.
"""

from __future__ import annotations

import pytest

from hilt.probes import runner
from hilt.probes.errors import ProbeSkipped
from hilt.probes.settings import ProbeSettings, parse_sizes
from hilt.probes.suite_support import NvlinkWatch, remeasurer


@pytest.fixture
def lease_settings(pytestconfig: pytest.Config, lease_nodes) -> ProbeSettings:
    from hilt.fabric.profile import load_profile

    profile = load_profile(lease_nodes[0].config.profile)
    sizes = pytestconfig.getoption("probe_sizes")
    return ProbeSettings.from_profile(getattr(profile, "probes", None), parse_sizes(sizes) if sizes else None,
                                      pytestconfig.getoption("probe_repeats"))


def _judge(metrics, probe, record_metric, release_gate) -> None:
    for metric in metrics:
        if metric.name in ("ddp.samples_per_s", "ddp.allreduce_busbw"):
            release_gate.check(metric, remeasurer(metric, probe))
        else:
            record_metric(metric)


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
        pytest.fail("NVLink errors during DDP:\n" + "\n".join(errors), pytrace=False)


def test_ddp_across_lease(lease_nodes, lease_settings: ProbeSettings, record_metric, release_gate) -> None:
    if len(lease_nodes) < 2:
        pytest.skip(f"the lease holds {len(lease_nodes)} node; multi-node DDP needs two or more")
    s = lease_settings

    def probe() -> list:
        return runner.ddp(lease_nodes, s.ddp_grad_mb, s.ddp_steps, s.timeout_s,
                          cpu_procs_per_node=s.cpu_procs_per_node).metrics

    _judge(probe(), probe, record_metric, release_gate)


def test_copy_bandwidth(node, probe_settings: ProbeSettings, record_metric, release_gate) -> None:
    s = probe_settings

    def probe() -> list:
        return runner.run_copy_bandwidth(node, list(s.copy_sizes), s.repeats, timeout_s=s.timeout_s)

    try:
        metrics = probe()
    except ProbeSkipped as exc:
        pytest.skip(str(exc))
    for metric in metrics:
        release_gate.check(metric, remeasurer(metric, probe))
