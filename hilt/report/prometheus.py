"""The latest run's metrics as a Prometheus text file (``reports/metrics.prom``).

For machines: node_exporter's textfile collector (or a push gateway) picks it up, so dashboards and alerts see
tonight's bandwidth without parsing our JSON. The file is written by ``prometheus_client`` in the text format
0.0.4 that the collector parses (Go's expfmt): gauges only, no ``info`` type (the collector drops a whole file
with one), no timestamps, atomically renamed into place so a scrape never reads half of it.

Each hilt metric becomes gauges ``hilt_<name>_{mean,min,max,samples}`` (and ``_verdict``, one series per
outcome, 1 for the reached one, so an alert is ``== 1``), labelled with ``rig``, ``metric`` (the hilt name,
verbatim) and the metric's own labels. Prometheus names allow only ``[a-zA-Z0-9_]``, so ``nccl.busbw`` and
``nccl_busbw`` share the family ``hilt_nccl_busbw_mean``: the ``metric`` label keeps them two series. Label
names that clean to the same name (``a.b``, ``a-b``), or to one hilt sets itself (``rig``, ``metric``,
``outcome``), get a suffix made from the original name's hash, stable from run to run, so no two labels of a
metric ever collapse into one.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import get_args

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, Metric

from hilt.history.series import parse_time
from hilt.record.run_record import GateOutcome, MetricRecord, RunRecord

# every outcome a run record can hold, so exactly one `_verdict` series is 1 (an alert on `== 1` never misses one)
_OUTCOMES: tuple[str, ...] = get_args(GateOutcome)
_SUFFIXES = {"mean": "mean of the run's samples", "min": "lowest sample", "max": "highest sample",
             "samples": "number of samples taken"}


def metric_name(name: str) -> str:
    """A valid Prometheus name from a dotted hilt name: ``nccl.all_reduce.busbw`` -> ``hilt_nccl_all_reduce_busbw``."""
    clean = re.sub(r"[^a-zA-Z0-9_]", "_", name).strip("_")
    clean = re.sub(r"__+", "_", clean)
    return f"hilt_{clean}" if clean else "hilt_unnamed"


def label_name(name: str) -> str:
    """A valid label name (``[a-zA-Z_][a-zA-Z0-9_]*``, not the reserved ``__`` prefix) close to ``name``."""
    clean = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    if not clean or clean[0].isdigit():
        clean = "_" + clean
    return "label_" + clean if clean.startswith("__") else clean


def _tag(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def label_names(keys: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Distinct label names for ``keys``: a key that is already valid keeps its name; one that had to be
    cleaned and meets a taken name gets ``_<hash of the original>`` (deterministic, whatever else is there)."""
    taken = set(reserved)
    out: dict[str, str] = {}
    keys = sorted(set(keys))
    for key in keys:  # valid names first: `a_b` stays `a_b` even when `a.b` is there too
        if label_name(key) == key and key not in taken:
            out[key] = key
            taken.add(key)
    for key in keys:
        if key in out:
            continue
        name = label_name(key)
        if name in taken:
            name = f"{name}_{_tag(key)}"
        out[key] = name
        taken.add(name)
    return out


def _labels(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    names = label_names(extra, reserved=base)
    return {**base, **{names[k]: str(v) for k, v in extra.items()}}


class _Families:
    """Gauge families by name, each with one help text, holding every series that lands on that name."""

    def __init__(self) -> None:
        self._help: dict[str, str] = {}
        self._about: dict[str, list[str]] = {}
        self._series: dict[str, dict[tuple, tuple[dict[str, str], float]]] = {}

    def add(self, name: str, help_text: str, labels: Mapping[str, str], value: float, about: str = "") -> None:
        """One series; ``about`` names the hilt metric, listed in the help (several when names meet)."""
        self._help.setdefault(name, help_text)
        if about and about not in self._about.setdefault(name, []):
            self._about[name].append(about)
        # two records with the same name and labels are one series (the last one wins): the collector would
        # refuse the whole file for a duplicate
        self._series.setdefault(name, {})[tuple(sorted(labels.items()))] = (dict(labels), float(value))

    def collect(self) -> Iterator[Metric]:
        for name, series in self._series.items():
            about = self._about.get(name)
            family = GaugeMetricFamily(name, f"{self._help[name]}: {', '.join(about)}" if about else self._help[name])
            for labels, value in series.values():
                family.add_sample(name, labels, value)
            yield family


def _metric_series(families: _Families, rig: str, name: str, metrics: list[MetricRecord]) -> None:
    family = metric_name(name)
    for m in metrics:
        labels = _labels({"rig": rig, "metric": name}, m.labels)
        about = f"{name} ({m.unit})" if m.unit else name
        finite = [s for s in m.samples if math.isfinite(s)]
        if finite:
            values = {"mean": math.fsum(finite) / len(finite), "min": min(finite), "max": max(finite)}
            for suffix, value in values.items():
                families.add(f"{family}_{suffix}", f"hilt metric, {_SUFFIXES[suffix]}", labels, value, about)
        families.add(f"{family}_samples", f"hilt metric, {_SUFFIXES['samples']}", labels, len(m.samples), about)
        if m.verdict is not None:
            for outcome in _OUTCOMES:
                families.add(f"{family}_verdict", "hilt metric, gate verdict (1 for the outcome reached)",
                             {**labels, "outcome": outcome}, 1 if m.verdict.outcome == outcome else 0, about)


class RunCollector:
    """A prometheus_client collector of one run record (registered in a private registry, never the global)."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record

    def collect(self) -> Iterator[Metric]:
        record = self.record
        families = _Families()
        base = {"rig": record.rig}
        families.add("hilt_run_info", "The run these metrics come from (always 1; its identity is in the labels).",
                     _labels({"rig": record.rig, "run_id": record.run_id, "image": record.image or ""},
                             record.versions), 1)
        families.add("hilt_run_start_time_seconds", "When the run started (Unix time).", base,
                     parse_time(record.started_at).timestamp())
        if record.gate is not None:
            for outcome in _OUTCOMES:
                families.add("hilt_gate_verdict", "Release gate verdict: 1 for the outcome reached, 0 for the others.",
                             {**base, "outcome": outcome}, 1 if record.gate.outcome == outcome else 0)
        by_name: dict[str, list[MetricRecord]] = {}
        for m in record.metrics:
            by_name.setdefault(m.name, []).append(m)
        for name in sorted(by_name):
            _metric_series(families, record.rig, name, by_name[name])
        yield from families.collect()


def render_metrics(record: RunRecord) -> str:
    """The text exposition of ``record``, as the file holds it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunCollector(record))
    return generate_latest(registry).decode("utf-8")


def write_metrics_prom(record: RunRecord, path: Path | str) -> Path:
    """Write ``record``'s metrics to ``path`` atomically (prometheus_client's ``write_to_textfile``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunCollector(record))
    write_to_textfile(str(path), registry)
    return path
