"""DCGM diagnostics, DCGM health watches and nvbandwidth on a node: run the tools, judge, make metrics.

Parsing is in hilt.fabric.dcgm and hilt.probes.nvbandwidth (pure); this module is the edge that runs the
commands through the Node interface (argv lists only) and the pure judgements the suites share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hilt.errors import InfrastructureError, ParseError
from hilt.fabric.dcgm import DcgmDiag, parse_dcgm_diag, parse_dcgm_health
from hilt.probes.errors import ProbeFailed, ProbeSkipped
from hilt.probes.nvbandwidth import NvbandwidthResult, parse_nvbandwidth
from hilt.probes.runner import has_command
from hilt.profiles.model import DcgmSpec
from hilt.record.metrics import Metric

if TYPE_CHECKING:  # a type only: the node protocol's package is a layer above this one (docs/architecture.md)
    from hilt.node.protocol import NodeLike


class DcgmIncomplete(InfrastructureError):
    """DCGM could not run its diagnostic (host engine down, GPUs busy): the rig failed, not the image."""


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_dcgm_diag(node: NodeLike, level: int, timeout_s: float = 600) -> DcgmDiag:
    """`dcgmi diag -r <level> -j` on the node. ProbeSkipped without dcgmi; DcgmIncomplete when DCGM could not
    complete the run or printed no diagnostic at all."""
    if has_command(node, "dcgmi") is None:
        raise ProbeSkipped(f"{node.name}: dcgmi is not installed (no DCGM on this image)")
    res = node.run(["dcgmi", "diag", "-r", str(level), "-j"], timeout=timeout_s, check=False)
    try:
        diag = parse_dcgm_diag(res.stdout)
    except ParseError as exc:
        raise DcgmIncomplete(f"{node.name}: dcgmi diag -r {level} printed no diagnostic (exit {res.exit_code}): "
                             f"{exc}; stderr: {_tail(res.stderr)}") from None
    if not diag.completed or diag.error:
        raise DcgmIncomplete(f"{node.name}: dcgmi diag -r {level} could not complete (exit {res.exit_code}): "
                             f"{diag.error or 'the output stops before the end'}")
    return diag


def judge_dcgm(diag: DcgmDiag, spec: DcgmSpec) -> list[str]:
    """One line per DCGM test that keeps the node from passing: failed, or warned/skipped where the profile
    does not allow it. Each names the test, its GPUs and its messages."""
    allow_warn = {n.lower() for n in spec.allow_warn}
    allow_skip = {n.lower() for n in spec.allow_skip}
    problems = []
    for t in diag.tests:
        if t.result == "pass":
            continue
        if t.result == "warn" and t.name.lower() in allow_warn:
            continue
        if t.result in ("skip", "not run") and t.name.lower() in allow_skip:
            continue
        bad = sorted(g for g, r in t.gpus.items() if r == t.result)
        where = f" on GPU {', '.join(str(g) for g in bad)}" if bad else ""
        why = f": {' | '.join(t.messages)}" if t.messages else ""
        field = "allow_warn" if t.result == "warn" else "allow_skip"
        allowed = "" if t.result == "fail" else f" (not in the profile's dcgm.{field})"
        category = f" ({t.category})" if t.category else ""
        problems.append(f"DCGM test {t.name!r}{category}: {t.result}{where}{allowed}{why}")
    if not diag.tests:
        problems.append("DCGM ran no test")
    return problems


class DcgmHealthWatch:
    """DCGM health watches around a probe: set before, checked after; a new incident fails the probe.

    Inert on nodes without dcgmi, as NvlinkWatch is on nodes without nvidia-smi."""

    def __init__(self, nodes: Sequence[NodeLike]):
        self.nodes = list(nodes)
        self.before: dict[str, list[str]] = {}

    def _check(self, node: NodeLike) -> list[str]:
        res = node.run(["dcgmi", "health", "-c"], timeout=60, check=False)
        try:
            return parse_dcgm_health(res.stdout).incidents
        except ParseError as exc:
            raise ProbeFailed(f"{node.name}: dcgmi health -c (exit {res.exit_code}) printed no report: {exc}") from None

    def __enter__(self) -> DcgmHealthWatch:
        for node in self.nodes:
            if has_command(node, "dcgmi"):
                node.run(["dcgmi", "health", "-s", "a"], timeout=60, check=False)
                self.before[node.name] = self._check(node)
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def new_incidents(self) -> list[str]:
        found = []
        for node in self.nodes:
            if node.name in self.before:
                old = set(self.before[node.name])
                found.extend(f"{node.name}: {i}" for i in self._check(node) if i not in old)
        return found


def run_nvbandwidth(node: NodeLike, testcases: Sequence[str], timeout_s: float = 300) -> NvbandwidthResult:
    """nvbandwidth -t <testcases> on the node. ProbeSkipped without nvbandwidth; ProbeFailed when a testcase
    the profile names printed no result (aborted, unknown or waived)."""
    if has_command(node, "nvbandwidth") is None:
        raise ProbeSkipped(f"{node.name}: nvbandwidth is not installed")
    res = node.run(["nvbandwidth", "-t", *testcases], timeout=timeout_s, check=False)
    try:
        result = parse_nvbandwidth(res.stdout)
    except ParseError as exc:
        raise ProbeFailed(f"{node.name}: nvbandwidth (exit {res.exit_code}) printed no results: {exc}; "
                          f"stderr: {_tail(res.stderr)}") from None
    missing = [t for t in testcases if result.total(t) is None]
    if missing:
        why = "; ".join(f"{t}: {result.errors.get(t) or ('waived' if t in result.waived else 'no SUM printed')}"
                        for t in missing)
        raise ProbeFailed(f"{node.name}: nvbandwidth (exit {res.exit_code}) gave no result for {why}; "
                          f"stderr: {_tail(res.stderr)}")
    return result


def nvbandwidth_metrics(result: NvbandwidthResult, testcases: Sequence[str], node: str) -> list[Metric]:
    """`nvbandwidth.<testcase>` in GB/s: the SUM (label pair=sum) and each GPU pair (pair="row-col"), with the
    GPU count. Bidirectional v0.10 testcases are read through their `_total` matrix."""
    metrics = []
    for name in testcases:
        total = result.total(name)
        matrix = result.testcases.get(name) or result.testcases.get(name + "_total") or {}
        gpus = len({c for _, c in matrix}) if matrix else 0
        labels = {"tool": "nvbandwidth", "node": node, "gpus": gpus}
        if total is not None:
            metrics.append(Metric.of(f"nvbandwidth.{name}", "GB/s", [total], {**labels, "pair": "sum"}))
        for (row, col), value in sorted(matrix.items()):
            metrics.append(Metric.of(f"nvbandwidth.{name}", "GB/s", [value], {**labels, "pair": f"{row}-{col}"}))
    return metrics
