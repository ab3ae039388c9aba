"""One trend chart as inline SVG: a metric's value per run, its baseline band, verdicts and changes.

Why hand-written SVG: the report must open from disk with no network, and a chart library embedded in
the file would weigh more than all the charts of a month. Sizes stay bounded at any history length:
the line is min/max-downsampled to ``max_path`` vertices and only the newest ``max_markers`` runs
(plus every change point) get a hoverable marker; older runs remain in the line and in the tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from hilt.history import Series, SeriesPoint
from hilt.report.changes import Change, run_anchor
from hilt.run_record import BaselineRecord

WIDTH, HEIGHT = 900, 230
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 14, 48
VERDICT_CLASSES = ("pass", "regression", "improvement", "inconclusive", "unbaselined")


def tolerance_band(baseline: BaselineRecord) -> tuple[float, float]:
    """The accepted range around a baseline; ``tolerance`` is relative (0.05 = within 5%)."""
    spread = abs(baseline.value) * baseline.tolerance
    return baseline.value - spread, baseline.value + spread


def verdict_class(verdict: str | None) -> str:
    return f"v-{verdict}" if verdict in VERDICT_CLASSES else "v-none"


def _fmt(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 1e6:
        return f"{value:.4g}"
    return f"{value:.3e}"


def _downsample(indices: Sequence[int], values: Sequence[float], limit: int) -> list[int]:
    """Indices to draw: each bucket's min and max, in order, so spikes survive downsampling."""
    n = len(indices)
    if n <= limit:
        return list(indices)
    buckets = max(1, limit // 2)
    keep: list[int] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        chunk = range(lo, hi)
        if not chunk:
            continue
        i_min = min(chunk, key=lambda i: values[i])
        i_max = max(chunk, key=lambda i: values[i])
        keep.extend(sorted({i_min, i_max}))
    if keep[-1] != n - 1:
        keep.append(n - 1)
    return keep


def _baseline_stretches(points: Sequence[SeriesPoint]) -> list[tuple[int, int, BaselineRecord]]:
    """Runs of consecutive points sharing one baseline, as (first, last, baseline)."""
    out: list[tuple[int, int, BaselineRecord]] = []
    for i, p in enumerate(points):
        b = p.baseline
        if b is None:
            continue
        if out and out[-1][1] == i - 1 and (out[-1][2].value, out[-1][2].tolerance) == (b.value, b.tolerance):
            out[-1] = (out[-1][0], i, out[-1][2])
        else:
            out.append((i, i, b))
    return out


def trend_chart(series: Series, changes: Sequence[Change], chart_id: str,
                max_markers: int = 60, max_path: int = 400) -> str:
    """The ``<svg class="trend-chart">`` of one series."""
    points = series.points
    n = len(points)
    values = [p.value for p in points]
    stretches = _baseline_stretches(points)
    lows, highs = list(values), list(values)
    for _, _, b in stretches:
        lo, hi = tolerance_band(b)
        lows.append(lo)
        highs.append(hi)
    y_min, y_max = min(lows), max(highs)
    pad = (y_max - y_min) * 0.08 or abs(y_max) * 0.05 or 1.0
    y_min, y_max = y_min - pad, y_max + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(n, 1)

    def x(i: float) -> float:
        return LEFT + step * (i + 0.5)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - y_min) / (y_max - y_min))

    key = series.key
    parts = [
        f'<svg class="trend-chart" id="{escape(chart_id)}" data-metric="{escape(key.metric)}" '
        f'data-rig="{escape(key.rig)}" data-points="{n}" data-changes="{len(changes)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title>{escape(key.metric)} on {escape(key.rig)} ({escape(series.unit)})</title>',
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>',
    ]
    for k in range(5):  # y grid and ticks
        v = y_min + (y_max - y_min) * k / 4
        yy = y(v)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 4}" y="{yy + 3:.1f}" text-anchor="end">{_fmt(v)}</text>')
    for first, last, b in stretches:  # tolerance band and baseline
        lo, hi = tolerance_band(b)
        x0, x1 = x(first) - step / 2, x(last) + step / 2
        parts.append(
            f'<rect class="band" x="{x0:.1f}" y="{y(hi):.1f}" width="{x1 - x0:.1f}" '
            f'height="{max(y(lo) - y(hi), 0.5):.1f}"><title>baseline {_fmt(b.value)} ± '
            f'{b.tolerance:.1%} ({_fmt(lo)} to {_fmt(hi)})</title></rect>'
            f'<line class="baseline" x1="{x0:.1f}" x2="{x1:.1f}" y1="{y(b.value):.1f}" y2="{y(b.value):.1f}"/>')
    last_label_x = -1e9  # image names on the x axis, where the image changes
    for i, p in enumerate(points):
        if i > 0 and p.image == points[i - 1].image:
            continue
        if x(i) - last_label_x < 110:
            continue
        last_label_x = x(i)
        name = p.image or "(unknown image)"
        short = name if len(name) <= 18 else name[:17] + "…"
        parts.append(f'<line class="img-tick" x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{TOP + plot_h}" '
                     f'y2="{TOP + plot_h + 5}"/><text class="img-label" x="{x(i):.1f}" '
                     f'y="{TOP + plot_h + 17}"><title>{escape(name)}</title>{escape(short)}</text>')
    if n:
        parts.append(f'<text class="date" x="{LEFT}" y="{HEIGHT - 6}">{points[0].started_at:%Y-%m-%d}</text>'
                     f'<text class="date" x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">'
                     f'{points[-1].started_at:%Y-%m-%d}</text>')
    seen_runs: set[str] = set()
    for i, changed in series.version_changes():  # NCCL/driver/kernel/image changed here: annotated, one series
        if points[i].run_id in seen_runs:
            continue
        seen_runs.add(points[i].run_id)
        what = ", ".join(f"{k} {a or '?'} -> {b}" for k, (a, b) in sorted(changed.items()))
        vx = x(i) - step / 2
        parts.append(f'<line class="version-change" x1="{vx:.1f}" x2="{vx:.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
                     f'stroke="#888" stroke-dasharray="2,3"><title>{escape(what)}</title></line>')
    for c in changes:  # change points: a line just before the first changed run
        cx = x(c.index) - step / 2
        parts.append(
            f'<a href="#{c.anchor}"><line class="cp cp-{c.kind}" data-run="{escape(c.run_id)}" '
            f'x1="{cx:.1f}" x2="{cx:.1f}" y1="{TOP}" y2="{TOP + plot_h}"><title>{c.kind} '
            f'{c.rel_change:+.1%} from run {escape(c.run_id)} (image {escape(c.image or "?")})</title></line></a>')
    drawn = _downsample(range(n), values, max_path)
    if drawn:
        path = "M" + " L".join(f"{x(i):.1f} {y(values[i]):.1f}" for i in drawn)
        parts.append(f'<path class="line" d="{path}"/>')
    marked = set(range(max(0, n - max_markers), n)) | {c.index for c in changes}
    for i in sorted(marked):
        p = points[i]
        tip = (f"{p.run_id} · {p.image or '?'} · {_fmt(p.value)} {series.unit} · "
               f"{p.verdict or 'no verdict'} · {p.started_at:%Y-%m-%d %H:%M}")
        parts.append(f'<a href="#{run_anchor(p.run_id)}"><circle class="pt {verdict_class(p.verdict)}" '
                     f'cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="3.5"><title>{escape(tip)}</title></circle></a>')
    parts.append("</svg>")
    return "".join(parts)
