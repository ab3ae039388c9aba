"""The latest run's metrics as an OpenMetrics text file (``reports/metrics.prom``).

For machines: a node-exporter textfile collector or a push gateway picks it up, so dashboards and
alerts see tonight's bandwidth without parsing our JSON. Each hilt metric becomes gauges
``hilt_<name>_{mean,min,max,samples}`` with the metric's labels plus ``rig``; the gate verdicts are
enum-style gauges (one series per possible outcome, 1 for the actual one) so an alert is a plain
``== 1`` comparison. The file is written atomically (rename) so a scraper never reads half of it.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

from hilt.history import parse_time
from hilt.run_record import RunRecord

_OUTCOMES = ("pass", "regression", "improvement", "inconclusive", "unbaselined")


def metric_name(name: str) -> str:
    """A valid OpenMetrics name from a dotted hilt name: ``nccl.all_reduce.busbw`` -> ``hilt_nccl_all_reduce_busbw``."""
    clean = re.sub(r"[^a-zA-Z0-9_]", "_", name).strip("_")
    clean = re.sub(r"__+", "_", clean)
    return f"hilt_{clean}" if clean else "hilt_unnamed"


def label_name(name: str) -> str:
    clean = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    if not clean or clean[0].isdigit():
        clean = "_" + clean
    return "label_" + clean if clean.startswith("__") else clean


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


def _num(value: float) -> str:
    return repr(float(value)) if value == value else "NaN"


def render_metrics(record: RunRecord) -> str:
    """The OpenMetrics exposition of ``record`` (ends with ``# EOF``)."""
    families: dict[str, tuple[str, str, list[str]]] = {}

    def add(name: str, help_text: str, labels: dict[str, str], value: float, kind: str = "gauge") -> None:
        family = name.removesuffix("_info") if kind == "info" else name
        families.setdefault(family, (kind, help_text, []))[2].append(f"{name}{_labels(labels)} {_num(value)}")

    base = {"rig": record.rig}
    info = dict(base, run_id=record.run_id, image=record.image or "")
    info.update({label_name(k): v for k, v in record.versions.items() if label_name(k) not in info})
    add("hilt_run_info", "The run these metrics come from.", info, 1, kind="info")
    add("hilt_run_start_time_seconds", "When the run started (Unix time).", base,
        parse_time(record.started_at).timestamp())
    if record.gate is not None:
        for outcome in _OUTCOMES:
            add("hilt_gate_verdict", "Release gate verdict: 1 for the outcome reached, 0 for the others.",
                dict(base, outcome=outcome), 1 if record.gate.outcome == outcome else 0)
    by_name: dict[str, list] = defaultdict(list)
    for m in record.metrics:
        by_name[m.name].append(m)
    for name, metrics in sorted(by_name.items()):
        fam = metric_name(name)
        unit = metrics[0].unit
        for m in metrics:
            labels = dict(base)
            labels.update({label_name(k): v for k, v in m.labels.items() if label_name(k) != "rig"})
            if m.samples:
                add(f"{fam}_mean", f"{name} ({unit}), mean of the run's samples.", labels,
                    sum(m.samples) / len(m.samples))
                add(f"{fam}_min", f"{name} ({unit}), lowest sample.", labels, min(m.samples))
                add(f"{fam}_max", f"{name} ({unit}), highest sample.", labels, max(m.samples))
            add(f"{fam}_samples", f"{name}: number of samples taken.", labels, len(m.samples))
            if m.verdict is not None:
                for outcome in _OUTCOMES:
                    add(f"{fam}_verdict", f"{name}: gate verdict, 1 for the outcome reached.",
                        dict(labels, outcome=outcome), 1 if m.verdict.outcome == outcome else 0)
    lines = []
    for name, (kind, help_text, samples) in families.items():
        lines.append(f"# TYPE {name} {kind}")
        lines.append(f"# HELP {name} {_escape(help_text)}")
        lines.extend(samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def write_metrics_prom(record: RunRecord, path: Path | str) -> Path:
    """Write ``render_metrics(record)`` to ``path`` atomically and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render_metrics(record), encoding="utf-8")
    os.replace(tmp, path)
    return path
