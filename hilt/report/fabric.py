"""The fabric picture: per node, the ``nvidia-smi topo -m`` matrix as found, against its profile's.

Why a grid and not a graph: the matrix is what an engineer knows from the terminal, every cell is a link,
and a degraded link (NV12 where NV18 was designed) is one cell to find. Each differing cell says
``found ≠ expected`` in its text and is listed below the grid in words, so nothing rests on colour. Drawn
from :class:`hilt.record.run_record.TopologyRecord` alone (the profile may have changed since the run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from hilt.record.run_record import RunRecord, TopologyRecord

STYLE = """
table.fabric{width:auto;border-collapse:collapse;font:12px ui-monospace,monospace}
table.fabric td,table.fabric th{padding:2px 5px;text-align:center;border:1px solid #ddd}
table.fabric td.nv{background:#dafbe1}table.fabric td.self{color:#aaa}
table.fabric td.diff{background:#ffebe9;outline:2px solid #cf222e;font-weight:700}
table.fabric td.missing{background:#fff8c5}table.fabric td.unchecked{color:#667}
"""


@dataclass(frozen=True)
class LinkDiff:
    """One link (a pair of devices) whose cell differs from the profile's."""

    a: str
    b: str
    expected: str
    found: str

    def text(self) -> str:
        return f"{self.a}–{self.b}: expected {self.expected}, found {self.found}"


def missing_devices(topology: TopologyRecord) -> list[str]:
    """Devices the profile expects that the output does not show (their whole row is None)."""
    return [d for i, d in enumerate(topology.devices) if all(cell is None for cell in topology.found[i])]


def link_diffs(topology: TopologyRecord) -> list[LinkDiff]:
    """Every link between two devices that are both present (each pair once) that the profile contradicts."""
    out = []
    devices = topology.devices
    for i, a in enumerate(devices):
        for j in range(i + 1, len(devices)):
            expected, found = topology.expected[i][j], topology.found[i][j]
            if expected is not None and found is not None and found != expected:
                out.append(LinkDiff(a, devices[j], expected, found))
    return out


def problems(topology: TopologyRecord) -> list[str]:
    """Everything that differs from the profile, one sentence each: missing devices, links, notes."""
    return ([f"{d}: the profile expects it; not in the output" for d in missing_devices(topology)]
            + [d.text() for d in link_diffs(topology)] + list(topology.notes))


def _device_label(topology: TopologyRecord, device: str) -> str:
    name = topology.nic_names.get(device)
    return escape(device) + (f'<br><span class="muted">{escape(name)}</span>' if name else "")


def _td(classes: str, a: str, b: str, title: str, body: str) -> str:
    return (f'<td class="{classes}" data-a="{escape(a, quote=True)}" data-b="{escape(b, quote=True)}" '
            f'title="{escape(title, quote=True)}">{body}</td>')


def _cell(topology: TopologyRecord, i: int, j: int) -> str:
    a, b = topology.devices[i], topology.devices[j]
    expected, found = topology.expected[i][j], topology.found[i][j]
    if found is None:
        title = f"{a}–{b}: not in the output" + (f", expected {expected}" if expected else "")
        return _td("link missing", a, b, title, '— <span class="muted">missing</span>')
    if i == j:
        return _td("self", a, b, a, "X")
    kind = "nv" if found.startswith("NV") else "other"
    if expected is None:
        return _td(f"link unchecked {kind}", a, b, f"{a}–{b}: {found} (the profile does not say)", escape(found))
    if found == expected:
        return _td(f"link ok {kind}", a, b, f"{a}–{b}: {found}, as expected", escape(found))
    return _td("link diff", a, b, f"{a}–{b}: expected {expected}, found {found}",
               f"{escape(found)} ≠ {escape(expected)}")


def fabric_grid(node: str, topology: TopologyRecord, rig: str = "", run_id: str = "") -> str:
    """One node's grid and, under it, its differences in words."""
    size = len(topology.devices)
    checked = sum(1 for i in range(size) for j in range(i + 1, size) if topology.expected[i][j] is not None)
    profile = escape(topology.profile or "?")
    head = "".join(f"<th>{_device_label(topology, d)}</th>" for d in topology.devices)
    rows = "".join(
        f"<tr><th>{_device_label(topology, d)}</th>" + "".join(_cell(topology, i, j) for j in range(size)) + "</tr>"
        for i, d in enumerate(topology.devices))
    found = problems(topology)
    if found:
        verdict = (f'<p class="fabric-verdict"><b>{len(found)} difference{"s" if len(found) != 1 else ""} '
                   f"from profile {profile}</b> (cells marked found ≠ expected):</p><ul class=\"fabric-diffs\">"
                   + "".join(f"<li>{escape(p)}</li>" for p in found) + "</ul>")
    else:
        verdict = (f'<p class="fabric-verdict">Matches profile {profile}: {checked} links checked; '
                   "cells the profile does not describe are shown grey.</p>")
    return (f'<div class="fabric-node" data-node="{escape(node, quote=True)}" data-rig="{escape(rig, quote=True)}" '
            f'data-diffs="{len(found)}"><h3>{escape(node)} <span class="muted">{escape(rig)} · '
            f'{"run " + escape(run_id) + " · " if run_id else ""}profile {profile}</span></h3>'
            f'<table class="fabric"><tr><th></th>{head}</tr>{rows}</table>{verdict}</div>')


def fabric_section(runs: Iterable[RunRecord]) -> str:
    """The report's Fabric section: each rig's latest run that recorded a topology, each node in it, the nodes
    with differences first; nothing when no run recorded one."""
    latest: dict[str, RunRecord] = {}
    for run in runs:  # oldest first: the last one with a topology wins
        if any(n.topology for n in run.nodes):
            latest[run.rig] = run
    if not latest:
        return ""  # older histories, or suites without test_topology: no empty section to scroll past
    out = ['<section id="fabric"><h2>Fabric</h2>']
    grids = []
    for rig in sorted(latest):
        run = latest[rig]
        for node in run.nodes:
            if node.topology is not None:
                grid = fabric_grid(node.name, node.topology, rig, run.run_id)
                grids.append((not problems(node.topology), rig, node.name, grid))
    out.append('<p class="muted">Per node, <code>nvidia-smi topo -m</code> of the rig\'s latest run against '
               "its profile; a cell reads found ≠ expected where they differ.</p>")
    grids.sort(key=lambda g: g[:3])
    out.extend(g[-1] for g in grids if not g[0])
    matching = [g for g in grids if g[0]]
    if matching:  # folded: at 8 am the reader wants the nodes that differ, not 16x16 grids that match
        out.append(f'<details class="fabric-matching"><summary>{len(matching)} node'
                   f'{"s" if len(matching) != 1 else ""} match their profile: '
                   f'{escape(", ".join(g[2] for g in matching))}</summary>{"".join(g[-1] for g in matching)}</details>')
    out.append("</section>")
    return f"<style>{STYLE}</style>" + "".join(out)
