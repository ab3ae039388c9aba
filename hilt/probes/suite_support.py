"""Glue the suites share: NVLink error readings around a probe, settings for lease-wide tests, re-measuring.

Kept in the engine (not in suites/) so both suites and tests can use it; it imports nothing from pytest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hilt.fabric.compare import check_error_delta
from hilt.fabric.snapshot import read_nvlink_errors
from hilt.probes.dcgm_probe import DcgmHealthWatch
from hilt.probes.runner import has_command
from hilt.record.metrics import Metric

if TYPE_CHECKING:  # a type only: the node protocol's package is a layer above this one (docs/architecture.md)
    from hilt.node.protocol import NodeLike


class NvlinkWatch:
    """NVLink error counters read before a probe and compared after it; inert on nodes without nvidia-smi.

    Where DCGM is installed it also sets DCGM health watches before and checks them after (issue 17): a new
    health incident during a probe is reported with the NVLink errors, so every probe that uses this watch
    fails on either."""

    def __init__(self, nodes: Sequence[NodeLike]):
        self.nodes = list(nodes)
        self.before: dict[str, list] = {}
        self.health = None

    def __enter__(self) -> NvlinkWatch:
        for node in self.nodes:
            if has_command(node, "nvidia-smi"):
                self.before[node.name] = read_nvlink_errors(node)
        self.health = DcgmHealthWatch(self.nodes).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def new_errors(self) -> list[str]:
        """Errors that appeared on any watched node since __enter__, each prefixed with the node's name."""
        found = []
        for node in self.nodes:
            if node.name in self.before:
                after = read_nvlink_errors(node)
                found.extend(f"{node.name}: {d}" for d in check_error_delta(self.before[node.name], after))
        if self.health is not None:
            found.extend(f"DCGM health: {i}" for i in self.health.new_incidents())
        return found


def remeasurer(metric: Metric, probe: Callable[[], list[Metric]]) -> Callable[[], Sequence[float]]:
    """A re-measure callback for the release gate: run the probe again and return this metric's new samples."""

    def again() -> Sequence[float]:
        for m in probe():
            if m.key == metric.key:
                return m.samples
        return ()

    return again


def shared_remeasurer(probe: Callable[[], list[Metric]]) -> Callable[[Metric], Callable[[], Sequence[float]]]:
    """Re-measure callbacks for every metric of one probe run (the release gate's ``check_all``): when the gate asks
    for more of one metric, the probe runs once and the other metrics' new samples wait for their own turn, so
    gating every GPU of a node costs one run per look, not one run per GPU."""
    waiting: dict[str, list[float]] = {}

    def for_metric(metric: Metric) -> Callable[[], Sequence[float]]:
        def again() -> Sequence[float]:
            if not waiting.get(metric.key):
                for m in probe():
                    waiting.setdefault(m.key, []).extend(m.samples)
            samples, waiting[metric.key] = waiting.get(metric.key, []), []
            return samples

        return again

    return for_metric
