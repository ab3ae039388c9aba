"""Collective bandwidth: nccl-tests where installed, and hilt's torch all-reduce probe, per node and lease-wide.

Sizes and repetitions come from the node's profile (``probes:``) and ``--probe-sizes`` / ``--probe-repeats``.
NVLink error counters are read before and after, so a run that only passes by retrying links fails.
"""

from __future__ import annotations

import pytest

from hilt.probes import runner
from hilt.probes.errors import ProbeSkipped
from hilt.probes.settings import ProbeSettings
from hilt.probes.suite_support import NvlinkWatch, remeasurer


def _gate_all(metrics, probe, record_metric, release_gate, name: str) -> None:
    for metric in metrics:
        if metric.name != name:
            record_metric(metric)
    release_gate.check_all([m for m in metrics if m.name == name], lambda m: remeasurer(m, probe))


def _no_new_nvlink_errors(watch: NvlinkWatch) -> None:
    errors = watch.new_errors()
    if errors:
        pytest.fail("NVLink errors or DCGM health incidents during the probe:\n" + "\n".join(errors), pytrace=False)


@pytest.mark.probe("nccl.")
def test_nccl_tests(node, probe_settings: ProbeSettings, record_metric, release_gate) -> None:
    s = probe_settings
    for binary in s.nccl_tests_binaries:
        if runner.has_command(node, binary) is None:
            pytest.skip(f"{node.name}: {binary} (nccl-tests) is not installed")

        def probe(binary: str = binary) -> list:
            return runner.run_nccl_tests([node], binary, s.nccl_tests_args, timeout_s=s.timeout_s)[1]

        with NvlinkWatch([node]) as watch:
            metrics = probe()
        _gate_all(metrics, probe, record_metric, release_gate, f"nccl.{binary.removesuffix('_perf')}.busbw")
        _no_new_nvlink_errors(watch)


@pytest.mark.probe("torch.all_reduce.")
def test_torch_allreduce(node, probe_settings: ProbeSettings, record_metric, release_gate) -> None:
    s = probe_settings

    def probe() -> list:
        return runner.torch_allreduce([node], list(s.sizes), s.repeats, s.warmup, s.timeout_s, iters=s.iters,
                                      dtype=s.dtype, cpu_procs_per_node=s.cpu_procs_per_node).metrics

    with NvlinkWatch([node]) as watch:
        metrics = probe()
    _gate_all(metrics, probe, record_metric, release_gate, "torch.all_reduce.busbw")
    _no_new_nvlink_errors(watch)


@pytest.mark.probe("torch.all_reduce.")
def test_torch_allreduce_across_lease(lease_nodes, lease_settings: ProbeSettings, record_metric,
                                      release_gate) -> None:
    if len(lease_nodes) < 2:
        pytest.skip(f"the lease holds {len(lease_nodes)} node; a multi-node all-reduce needs two or more")
    s = lease_settings

    def probe() -> list:
        return runner.torch_allreduce(lease_nodes, list(s.sizes), s.repeats, s.warmup, s.timeout_s,
                                      iters=s.iters, dtype=s.dtype, cpu_procs_per_node=s.cpu_procs_per_node).metrics

    with NvlinkWatch(lease_nodes) as watch:
        metrics = probe()
    _gate_all(metrics, probe, record_metric, release_gate, "torch.all_reduce.busbw")
    _no_new_nvlink_errors(watch)


@pytest.mark.probe("nccl.")
def test_nccl_tests_across_lease(lease_nodes, lease_settings: ProbeSettings, record_metric, release_gate) -> None:
    s = lease_settings
    if len(lease_nodes) < 2:
        pytest.skip("a multi-node nccl-tests run needs two or more nodes")
    if not s.mpi_launcher:
        pytest.skip("the profile names no MPI launcher (probes.mpi_launcher) for multi-node nccl-tests")
    binary = s.nccl_tests_binaries[0]

    def probe() -> list:
        try:
            return runner.run_nccl_tests(lease_nodes, binary, s.nccl_tests_args, launcher=s.mpi_launcher,
                                         timeout_s=s.timeout_s)[1]
        except ProbeSkipped as exc:
            pytest.skip(str(exc))

    metrics = probe()
    _gate_all(metrics, probe, record_metric, release_gate, f"nccl.{binary.removesuffix('_perf')}.busbw")
