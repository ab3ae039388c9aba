"""One trend chart as inline SVG: a metric's value per run and node, its baseline band, verdicts and changes.

Why hand-written SVG: the report must open from disk with no network, and a chart library embedded in
the file would weigh more than all the charts of a month. Sizes stay bounded at any history length:
each node's line is min/max-downsampled to ``max_path`` vertices and only the newest ``max_markers`` runs
(plus every change point) get a hoverable marker, fewer runs when more than 4 nodes share a chart (the
markers stay at ``4 * max_markers``); older runs remain in the line and in the tables.

Why one line per node: a series is one measurement on one rig (issue 13), and each run adds one point per
node that measured it. Drawn as one line the nodes zig-zag into each other and a step on one node of four
is hidden; drawn per node (colour in the legend) the node that moved stands out. The x axis is the run.

Readability for the 8 am reader: y ticks fall on 1-2-5 steps (85, 90, 95, not 86.11), a legend names
every colour, image names on the axis are shortened in the middle only when the next label needs the
room (the full name is on hover), and markers are coloured by the gate's verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from hilt.history.series import Series, SeriesPoint
from hilt.record.run_record import BaselineRecord
from hilt.report.changes import Change, run_anchor

WIDTH, HEIGHT = 900, 250
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 34, 48
VERDICT_CLASSES = ("pass", "regression", "improvement", "inconclusive", "unbaselined")
#: Node line colours (Okabe-Ito, distinguishable with colour-blindness); nodes past the palette are grey.
NODE_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000", "#f0e442")
OTHER_COLOUR = "#8c959f"
SINGLE_COLOUR = "#57606a"  # a series measured on one node (or lease-wide) needs no node colour
CHAR_W = 6.0  # approximate width of one 10px character, for laying out labels


def tolerance_band(baseline: BaselineRecord) -> tuple[float, float]:
    """The accepted range around a baseline; ``tolerance`` is relative (0.05 = within 5%)."""
    spread = abs(baseline.value) * baseline.tolerance
    return baseline.value - spread, baseline.value + spread


def verdict_class(verdict: str | None) -> str:
    return f"v-{verdict}" if verdict in VERDICT_CLASSES else "v-none"


def split_metric_key(metric_key: str) -> tuple[str, list[tuple[str, str]]]:
    """``name{k=v,...}`` as (name, [(k, v), ...]); a value holding a comma stays whole."""
    name, _, inner = metric_key.partition("{")
    inner = inner[:-1] if inner.endswith("}") else inner
    pairs: list[tuple[str, str]] = []
    for piece in inner.split(",") if inner else []:
        key, eq, value = piece.partition("=")
        if eq:
            pairs.append((key, value))
        elif pairs:  # the rest of a value that held a comma
            pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]},{piece}")
    return name, pairs


def labels_text(labels: dict[str, str] | Sequence[tuple[str, str]]) -> str:
    """Labels as a reader writes them: ``size=1G, nodes=2`` ("" when there are none; never ``{}``)."""
    items = sorted(labels.items()) if isinstance(labels, dict) else list(labels)
    return ", ".join(f"{k}={v}" for k, v in items)


def metric_title(metric_key: str) -> str:
    """``nccl.busbw size=1G, nodes=2`` or just ``boot.seconds``: the series name for headings and tables."""
    name, pairs = split_metric_key(metric_key)
    return f"{name} {labels_text(pairs)}" if pairs else name


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Ticks on a 1-2-5 step covering [lo, hi]: the first at or below ``lo``, the last at or above ``hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi < lo:
        lo, hi = hi, lo
    span = hi - lo
    if span == 0:
        span = abs(hi) * 0.1 or 1.0
        lo, hi = lo - span / 2, hi + span / 2
    raw = span / max(target - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def tick_label(value: float, step: float) -> str:
    """A tick as short as its step allows: 85, 0.25, 1.5k, 2M."""
    if value == 0:
        return "0"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if step >= scale / 10 and abs(value) >= scale:
            return f"{value / scale:.{_decimals(step / scale)}f}{suffix}"
    if step < 1e-4:
        return f"{value:.2e}"
    return f"{value:.{_decimals(step)}f}"


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0


def _fmt(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 1e6:
        return f"{value:.4g}"
    return f"{value:.3e}"


def shorten(text: str, chars: int) -> str:
    """``text`` cut in the middle to ``chars`` characters: image names differ at the end (the version)."""
    if len(text) <= chars:
        return text
    if chars <= 3:
        return text[:max(chars, 1)]
    head = (chars - 1) // 2
    tail = chars - 1 - head
    return text[:head] + "…" + text[len(text) - tail:]


def _downsample(indices: Sequence[int], values: Sequence[float], limit: int) -> list[int]:
    """Positions (into ``indices``) to draw: each bucket's min and max, in order, so spikes survive."""
    n = len(indices)
    if n <= limit:
        return list(range(n))
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


def _baseline_stretches(points: Sequence[SeriesPoint], col: Sequence[int]
                        ) -> list[tuple[int, int, BaselineRecord]]:
    """Runs of consecutive run columns sharing one baseline, as (first column, last column, baseline)."""
    out: list[tuple[int, int, BaselineRecord]] = []
    for i, p in enumerate(points):
        b = p.baseline
        if b is None:
            continue
        c = col[i]
        if out and out[-1][1] in (c, c - 1) and (out[-1][2].value, out[-1][2].tolerance) == (b.value, b.tolerance):
            out[-1] = (out[-1][0], c, out[-1][2])
        elif not (out and out[-1][1] == c):
            out.append((c, c, b))
    return out


def node_colours(nodes: Sequence[str]) -> dict[str, str]:
    """Each node's line colour, in the order given (sorted by the caller, so a node keeps its colour)."""
    return {n: NODE_COLOURS[i] if i < len(NODE_COLOURS) else OTHER_COLOUR for i, n in enumerate(nodes)}


def _legend(items: list[tuple[str, str, str]]) -> str:
    """One row above the plot: (swatch svg at (0, 0), label, hover title) laid out left to right."""
    parts = ['<g class="legend">']
    x = float(LEFT)
    for swatch, label, title in items:
        shown = shorten(label, 24)
        width = 18 + CHAR_W * len(shown) + 14
        if x + width > WIDTH - RIGHT:
            parts.append(f'<text x="{x:.1f}" y="16">…<title>{escape(title)}</title></text>')
            break
        parts.append(f'<g class="legend-item" transform="translate({x:.1f},12)"><title>{escape(title)}</title>'
                     f'{swatch}<text x="16" y="4">{escape(shown)}</text></g>')
        x += width
    parts.append("</g>")
    return "".join(parts)


def trend_chart(series: Series, changes: Sequence[Change], chart_id: str,
                max_markers: int = 60, max_path: int = 400) -> str:
    """The ``<svg class="trend-chart">`` of one series."""
    points = series.points
    n = len(points)
    runs: list[str] = []  # run columns, in the series' (time) order
    col_of: dict[str, int] = {}
    for p in points:
        if p.run_id not in col_of:
            col_of[p.run_id] = len(runs)
            runs.append(p.run_id)
    col = [col_of[p.run_id] for p in points]
    n_runs = len(runs)
    values = [p.value for p in points]
    stretches = _baseline_stretches(points, col)
    lows, highs = list(values), list(values)
    for _, _, b in stretches:
        lo, hi = tolerance_band(b)
        lows.append(lo)
        highs.append(hi)
    ticks = nice_ticks(min(lows, default=0.0), max(highs, default=1.0))
    y_min, y_max = ticks[0], ticks[-1]
    step_y = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(n_runs, 1)

    def x(c: float) -> float:
        return LEFT + step * (c + 0.5)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - y_min) / ((y_max - y_min) or 1.0))

    nodes = sorted({p.node for p in points})
    colours = node_colours(nodes) if len(nodes) > 1 else {n: SINGLE_COLOUR for n in nodes}
    marker_stroke = colours if len(nodes) > 1 else {n: "#ffffff" for n in nodes}
    key = series.key
    parts = [
        f'<svg class="trend-chart" id="{escape(chart_id)}" data-metric="{escape(key.metric)}" '
        f'data-rig="{escape(key.rig)}" data-points="{n}" data-runs="{n_runs}" data-changes="{len(changes)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title>{escape(metric_title(key.metric))} on {escape(key.rig)} ({escape(series.unit)})</title>',
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>',
    ]
    for v in ticks:  # y grid and ticks, on 1-2-5 steps
        yy = y(v)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 4}" y="{yy + 3:.1f}" text-anchor="end">'
                     f'{escape(tick_label(v, step_y))}</text>')
    for first, last, b in stretches:  # tolerance band and baseline
        lo, hi = tolerance_band(b)
        x0, x1 = x(first) - step / 2, x(last) + step / 2
        parts.append(
            f'<rect class="band" x="{x0:.1f}" y="{y(hi):.1f}" width="{x1 - x0:.1f}" '
            f'height="{max(y(lo) - y(hi), 0.5):.1f}"><title>baseline {_fmt(b.value)} ± '
            f'{b.tolerance:.1%} ({_fmt(lo)} to {_fmt(hi)})</title></rect>'
            f'<line class="baseline" x1="{x0:.1f}" x2="{x1:.1f}" y1="{y(b.value):.1f}" y2="{y(b.value):.1f}"/>')
    parts.append(_image_labels(points, col, x, TOP + plot_h))
    if n:
        parts.append(f'<text class="date" x="{LEFT}" y="{HEIGHT - 6}">{points[0].started_at:%Y-%m-%d}</text>'
                     f'<text class="date" x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">'
                     f'{points[-1].started_at:%Y-%m-%d}</text>')
    seen_runs: set[str] = set()
    versions_changed = False
    for i, changed in series.version_changes():  # NCCL/driver/kernel/image changed here: annotated, one series
        if points[i].run_id in seen_runs:
            continue
        seen_runs.add(points[i].run_id)
        versions_changed = True
        what = ", ".join(f"{k} {a or '?'} -> {b}" for k, (a, b) in sorted(changed.items()))
        where = f" on {points[i].node}" if points[i].node else ""
        vx = x(col[i]) - step / 2
        parts.append(f'<line class="version-change" x1="{vx:.1f}" x2="{vx:.1f}" y1="{TOP}" y2="{TOP + plot_h}">'
                     f'<title>{escape(what + where)}</title></line>')
    for c in changes:  # change points: a line just before the first changed run
        cx = x(col_of.get(c.run_id, col[min(c.index, n - 1)])) - step / 2
        node = points[c.index].node if 0 <= c.index < n else ""
        where = f" on {node}" if node else ""
        parts.append(
            f'<a href="#{c.anchor}"><line class="cp cp-{c.kind}" data-run="{escape(c.run_id)}" '
            f'x1="{cx:.1f}" x2="{cx:.1f}" y1="{TOP}" y2="{TOP + plot_h}"><title>{c.kind} '
            f'{c.rel_change:+.1%}{escape(where)} from run {escape(c.run_id)} (image {escape(c.image or "?")})'
            f'</title></line></a>')
    for node in nodes:  # one line per node
        idx = [i for i in range(n) if points[i].node == node]
        drawn = [idx[k] for k in _downsample(idx, [values[i] for i in idx], max_path)]
        if drawn:
            path = "M" + " L".join(f"{x(col[i]):.1f} {y(values[i]):.1f}" for i in drawn)
            parts.append(f'<path class="line" data-node="{escape(node)}" stroke="{colours[node]}" d="{path}"/>')
    # markers for the newest runs: max_markers runs for up to 4 nodes, fewer runs for more nodes (size bound)
    marker_runs = min(max_markers, max(1, max_markers * 4 // max(len(nodes), 1)))
    marked_runs = set(range(max(0, n_runs - marker_runs), n_runs))
    marked = {i for i in range(n) if col[i] in marked_runs} | {c.index for c in changes if 0 <= c.index < n}
    verdicts_shown: set[str] = set()
    for i in sorted(marked):
        p = points[i]
        verdicts_shown.add(verdict_class(p.verdict))
        on = f" · {p.node}" if p.node else ""
        tip = (f"{p.run_id}{on} · {p.image or '?'} · {_fmt(p.value)} {series.unit} · "
               f"{p.verdict or 'no verdict'} · {p.started_at:%Y-%m-%d %H:%M}")
        parts.append(f'<a href="#{run_anchor(p.run_id)}"><circle class="pt {verdict_class(p.verdict)}" '
                     f'data-node="{escape(p.node)}" cx="{x(col[i]):.1f}" cy="{y(p.value):.1f}" r="3.5" '
                     f'stroke="{marker_stroke[p.node]}"><title>{escape(tip)}</title></circle></a>')
    parts.append(_legend(_legend_items(nodes, colours, verdicts_shown, bool(stretches), bool(changes),
                                       versions_changed)))
    parts.append("</svg>")
    return "".join(parts)


def _legend_items(nodes: list[str], colours: dict[str, str], verdicts: set[str], band: bool, changes: bool,
                  versions: bool) -> list[tuple[str, str, str]]:
    items = []
    if len(nodes) > 1 or (nodes and nodes[0]):
        for node in nodes:
            items.append((f'<line x1="0" x2="12" y1="0" y2="0" stroke="{colours[node]}" stroke-width="2"/>',
                          node or "(lease)", f"node {node or '(lease-wide)'}"))
    for cls in (*(f"v-{v}" for v in VERDICT_CLASSES), "v-none"):
        if cls in verdicts:
            label = "no verdict" if cls == "v-none" else cls[2:]
            items.append((f'<circle class="lg-verdict {cls}" cx="6" cy="0" r="4"/>', label,
                          f"gate verdict: {label}"))
    if band:
        items.append(('<rect class="lg-band" x="0" y="-5" width="12" height="10" fill="#1a7f37" '
                      'fill-opacity=".12"/>', "baseline ± tolerance", "the baseline and its tolerance band"))
    if changes:
        items.append(('<line class="lg-cp" x1="6" x2="6" y1="-6" y2="6" stroke="#cf222e" stroke-width="2" '
                      'stroke-dasharray="5 3"/>', "change point",
                      "a level shift found by Otava (red: regression, blue: improvement)"))
    if versions:
        items.append(('<line class="lg-version" x1="6" x2="6" y1="-6" y2="6" stroke="#888" '
                      'stroke-dasharray="2 3"/>', "version change", "driver, NCCL, kernel or image changed"))
    return items


def _image_labels(points: Sequence[SeriesPoint], col: Sequence[int], x, axis_y: float) -> str:  # noqa: ANN001
    """Image names on the x axis where the image changes; each gets the room up to the next one."""
    starts: list[tuple[int, str]] = []
    for i, p in enumerate(points):
        name = p.image or "(unknown image)"
        if not starts or starts[-1][1] != name:
            if starts and starts[-1][0] == col[i]:
                continue  # two images in one run: the first one labels it
            starts.append((col[i], name))
    parts = []
    row_end = [float("-inf"), float("-inf")]  # where each of the two label rows' last label ends
    for k, (c, name) in enumerate(starts):
        x0 = x(c)
        row = k % 2  # alternate rows: each label gets the room up to the next label but one
        right = x(starts[k + 2][0]) - 8 if k + 2 < len(starts) else WIDTH - RIGHT
        parts.append(f'<line class="img-tick" x1="{x0:.1f}" x2="{x0:.1f}" y1="{axis_y}" y2="{axis_y + 5}">'
                     f'<title>{escape(name)}</title></line>')
        text_y = axis_y + 15 + 12 * row
        need = CHAR_W * len(name)
        if x0 + need > right and k + 2 >= len(starts) and right - need > row_end[row] + 8:
            # the last label on its row, near the right edge: end-anchored at the edge, whole
            parts.append(f'<text class="img-label" x="{right:.1f}" y="{text_y}" text-anchor="end">'
                         f'<title>{escape(name)}</title>{escape(name)}</text>')
            row_end[row] = right
            continue
        chars = int((right - x0) / CHAR_W)
        if chars >= 4:
            shown = shorten(name, chars)
            parts.append(f'<text class="img-label" x="{x0:.1f}" y="{text_y}"><title>{escape(name)}</title>'
                         f'{escape(shown)}</text>')
            row_end[row] = x0 + CHAR_W * len(shown)
    return "".join(parts)


# ---------------------------------------------------------------------------------------------------- C2C

C2C_ROW, C2C_WIDTH = 34, 560


def c2c_diagram(links: dict[int, dict[int, float | None]], links_per_gpu: int | None = None,
                min_link_gbps: float | None = None, node: str = "") -> str:
    """One node's NVLink-C2C as a picture: the CPU on the left, each GPU on the right, one line per GPU saying how
    many of its links are up and their total GB/s. A GPU short of links, or with a link under the minimum, gets a
    dashed line and the reason in its label (the words say it; the colour only repeats it). No GPU at all: the
    node said "No Devices support C2C."."""
    gpus = sorted(links)
    height = max(1, len(gpus)) * C2C_ROW + 16
    parts = [f'<svg class="c2c-diagram" data-node="{escape(node, quote=True)}" data-gpus="{len(gpus)}" '
             f'viewBox="0 0 {C2C_WIDTH} {height}" width="{C2C_WIDTH}" height="{height}" role="img" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<title>NVLink-C2C of {escape(node or "the node")}</title>',
             f'<rect class="c2c-cpu" x="4" y="8" width="70" height="{height - 16}" rx="4"/>'
             f'<text x="39" y="{height / 2 + 4:.0f}" text-anchor="middle">CPU</text>']
    if not gpus:
        parts.append(f'<text class="c2c-none" x="90" y="{height / 2 + 4:.0f}">no GPU supports C2C '
                     f'(nvidia-smi c2c -s: "No Devices support C2C.")</text></svg>')
        return "".join(parts)
    for row, gpu in enumerate(gpus):
        speeds = links[gpu]
        up = [s for s in speeds.values() if s is not None]
        down = [i for i, s in sorted(speeds.items()) if s is None]
        slow = [i for i, s in sorted(speeds.items()) if s is not None and min_link_gbps is not None
                and s < min_link_gbps]
        want = links_per_gpu if links_per_gpu is not None else len(speeds)
        bad = bool(down or slow) or len(up) < want
        label = f"GPU{gpu}: {len(up)}/{want} links, {sum(up):.1f} GB/s"
        if down:
            label += f" (link {', '.join(map(str, down))} down)"
        if slow:
            label += f" (link {', '.join(map(str, slow))} under {min_link_gbps:g} GB/s)"
        y = 8 + row * C2C_ROW + C2C_ROW / 2
        cls, dash = (" c2c-bad", ' stroke-dasharray="6 4"') if bad else ("", "")
        parts.append(f'<g class="c2c-gpu{cls}" data-gpu="{gpu}"><title>{escape(label)}</title>'
                     f'<line x1="74" x2="360" y1="{y:.0f}" y2="{y:.0f}"{dash}/>'
                     f'<text x="84" y="{y - 4:.0f}">{escape(label.split(": ", 1)[1])}</text>'
                     f'<rect x="360" y="{y - 12:.0f}" width="80" height="24" rx="4"/>'
                     f'<text x="400" y="{y + 4:.0f}" text-anchor="middle">GPU{gpu}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
