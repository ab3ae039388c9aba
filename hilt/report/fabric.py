"""The fabric picture: per node, the ``nvidia-smi topo -m`` matrix as found, against its profile's; on coherent
hosts also the NVLink-C2C links to the CPU, each GPU's place in the NVLink domain, and IMEX's view.

Why a grid and not a graph: the matrix is what an engineer knows from the terminal, every cell is a link,
and a degraded link (NV12 where NV18 was designed) is one cell to find. Each differing cell says
``found ≠ expected`` in its text and is listed below the grid in words, so nothing rests on colour. Drawn
from :class:`hilt.record.run_record.TopologyRecord` alone (the profile may have changed since the run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from hilt.record.run_record import C2cRecord, DomainRecord, ImexRecord, NodeRecord, RunRecord, TopologyRecord
from hilt.report.svg import c2c_diagram

STYLE = """
table.fabric{width:auto;border-collapse:collapse;font:12px ui-monospace,monospace}
table.fabric td,table.fabric th{padding:2px 5px;text-align:center;border:1px solid #ddd}
table.fabric td.nv{background:#dafbe1}table.fabric td.self{color:#aaa}
table.fabric td.diff{background:#ffebe9;outline:2px solid #cf222e;font-weight:700}
table.fabric td.missing{background:#fff8c5}table.fabric td.unchecked{color:#667}
svg.c2c-diagram{display:block;max-width:100%;height:auto;margin:4px 0}svg.c2c-diagram text{font-size:11px;fill:#1b1f24}
svg.c2c-diagram rect{fill:#f5f6f8;stroke:#888}svg.c2c-diagram line{stroke:#1a7f37;stroke-width:2}
svg.c2c-diagram .c2c-bad line{stroke:#cf222e}svg.c2c-diagram .c2c-bad text{fill:#cf222e;font-weight:700}
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


# ------------------------------------------------------------------------------------- coherent fabric

#: Health values that mean "no problem" whatever the row (the profile's own list decided the test; the picture
#: marks the rest so a reader finds the row that failed).
_QUIET = ("N/A", "None", "False", "Healthy", "Full")
_DIFF = ' class="diff"'
IMEX_NAMES = {"C": "Connected", "I": "Invalid", "N": "Never Connected", "R": "Recovering", "D": "Disconnected",
              "A": "Authenticating", "!V!": "Version mismatch", "!M!": "Node map mismatch"}


def imex_problems(imex: ImexRecord) -> list[str]:
    """What IMEX's view shows wrong: a domain not UP, a node not READY, a connection not C, or no view at all."""
    if imex.error:
        return [f"IMEX not read: {imex.error}"]
    out = [] if imex.domain_state == "UP" else [f"IMEX Domain State {imex.domain_state}, expected UP"]
    out += [f"IMEX node #{n.index} ({n.address}) is {n.status}, expected READY" for n in imex.nodes
            if n.status != "READY"]
    out += [f"IMEX connection #{pair.replace('-', ' -> #')}: {code}, expected C" for pair, code in
            sorted(imex.connections.items(), key=lambda kv: [int(x) for x in kv[0].split("-")]) if code != "C"]
    return out


def coherent_problems(node: NodeRecord) -> list[str]:
    """Everything the coherent-fabric tests found on a node, one sentence each."""
    out = list(node.c2c.problems) if node.c2c else []
    if node.domain is not None:
        out += node.domain.problems + (imex_problems(node.domain.imex) if node.domain.imex else [])
    return out


def c2c_block(node: str, record: C2cRecord) -> str:
    """The C2C diagram and, under it, each GPU's links as `nvidia-smi c2c -s` printed them."""
    width = max([len(links) for links in record.links.values()] + [record.links_per_gpu or 0])
    head = "".join(f"<th>link {i}</th>" for i in range(width))
    rows = []
    for gpu, links in sorted(record.links.items()):
        cells = []
        for i in range(width):
            if i not in links:
                cells.append('<td class="missing" title="not reported">— <span class="muted">missing</span></td>'
                             if record.links_per_gpu is not None and i < record.links_per_gpu else "<td></td>")
                continue
            speed = links[i]
            low = speed is not None and record.min_link_gbps is not None and speed < record.min_link_gbps
            if speed is None:
                cells.append(f'<td class="diff" title="GPU{gpu} C2C link {i}: inactive">down</td>')
            elif low:
                cells.append(f'<td class="diff" title="GPU{gpu} C2C link {i}: {speed:g} GB/s, expected at least '
                             f'{record.min_link_gbps:g}">{speed:g} &lt; {record.min_link_gbps:g}</td>')
            else:
                cells.append(f'<td class="nv" title="GPU{gpu} C2C link {i}: {speed:g} GB/s">{speed:g}</td>')
        rows.append(f"<tr><th>GPU{gpu}</th>{''.join(cells)}</tr>")
    table = (f'<table class="fabric c2c"><tr><th></th>{head}</tr>{"".join(rows)}</table>' if rows else "")
    expect = (f"expected {record.links_per_gpu} links per GPU" if record.links_per_gpu is not None else "") + (
        f", at least {record.min_link_gbps:g} GB/s each" if record.min_link_gbps is not None else "")
    return (f'<div class="fabric-c2c"><h4>NVLink-C2C <span class="muted">(GB/s per link; {escape(expect)})</span>'
            f"</h4>{c2c_diagram(record.links, record.links_per_gpu, record.min_link_gbps, node)}{table}</div>")


def domain_block(record: DomainRecord) -> str:
    """Each GPU's fabric: training state, the clique and ClusterUUID it joined, any health row that is not quiet."""
    rows = []
    for g in record.gpus:
        loud = [f"{row}: {value}" for row, value in g.health.items() if value not in _QUIET]
        mark = ' class="diff"' if loud else ""
        rows.append(f"<tr><th>GPU{g.gpu}</th><td>{escape(g.pci_bus_id or '')}</td><td>{escape(g.state or '—')}</td>"
                    f"<td>{escape(g.status or '—')}</td><td>{g.clique_id if g.clique_id is not None else 'N/A'}</td>"
                    f"<td><code>{escape(g.cluster_uuid or 'N/A')}</code></td>"
                    f"<td{mark}>{escape('; '.join(loud)) or 'healthy'}</td></tr>")
    if not rows:
        return ""
    return ('<div class="fabric-domain"><h4>NVLink fabric <span class="muted">(nvidia-smi -q)</span></h4>'
            '<table class="fabric domain"><tr><th></th><th>bus</th><th>state</th><th>status</th><th>clique</th>'
            f'<th>ClusterUUID</th><th>health</th></tr>{"".join(rows)}</table></div>')


def imex_block(imex: ImexRecord) -> str:
    """IMEX as the node saw it: the domain state, each IMEX node, and the from/to matrix (a cell not C says so)."""
    if imex.error:
        return f'<div class="fabric-imex"><h4>IMEX</h4><p class="diff">not read: {escape(imex.error)}</p></div>'
    indices = [n.index for n in imex.nodes] or sorted({int(p.split("-")[0]) for p in imex.connections})
    head = "".join(f"<th>{i}</th>" for i in indices)
    rows = []
    for a in indices:
        cells = []
        for b in indices:
            code = imex.connections.get(f"{a}-{b}")
            if code is None:
                cells.append("<td></td>")
            elif code == "C":
                cells.append(f'<td class="nv" title="#{a} → #{b}: Connected">C</td>')
            else:
                meaning = IMEX_NAMES.get(code, "not a legend code")
                cells.append(f'<td class="diff" title="#{a} → #{b}: {escape(meaning)}">{escape(code)} ≠ C</td>')
        rows.append(f"<tr><th>{a}</th>{''.join(cells)}</tr>")
    nodes = "".join(f"<tr><td>#{n.index}</td><td>{escape(n.address)}</td>"
                    f"<td{_DIFF if n.status != 'READY' else ''}>{escape(n.status)}</td>"
                    f"<td>{escape(n.version or '—')}</td></tr>" for n in imex.nodes)
    state = escape(imex.domain_state)
    return (f'<div class="fabric-imex" data-domain-state="{state}"><h4>IMEX <span class="muted">(nvidia-imex-ctl -N: '
            f'Domain State {state})</span></h4><table class="fabric imex-nodes"><tr><th>node</th><th>address</th>'
            f'<th>status</th><th>version</th></tr>{nodes}</table><table class="fabric imex"><tr><th>from\\to</th>'
            f'{head}</tr>{"".join(rows)}</table></div>')


def coherent_html(node: NodeRecord, outlier: str | None = None) -> str:
    """A node's coherent fabric (C2C, its NVLink domain, IMEX), with what differs listed in words (``outlier``: why
    the node is not in the lease's domain, from domain_outliers)."""
    parts = []
    if node.c2c is not None:
        parts.append(c2c_block(node.name, node.c2c))
    if node.domain is not None:
        parts.append(domain_block(node.domain))
        if node.domain.imex is not None:
            parts.append(imex_block(node.domain.imex))
    found = coherent_problems(node) + ([outlier] if outlier else [])
    if found:
        parts.append(f'<ul class="fabric-diffs">{"".join(f"<li>{escape(p)}</li>" for p in found)}</ul>')
    return (f'<div class="fabric-coherent" data-node="{escape(node.name, quote=True)}" data-diffs="{len(found)}">'
            f'{"".join(parts)}</div>')


def _domain_groups(nodes: Iterable[NodeRecord]) -> dict[tuple[str, str], list[str]]:
    """(ClusterUUID, clique) -> the nodes in it (``node GPUi,j`` where only some of a node's GPUs are); GPUs still
    training are left out (the per-node table shows them)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for node in nodes:
        if node.domain is None:
            continue
        by_key: dict[tuple[str, str], list[int]] = {}
        for g in node.domain.gpus:
            if g.state != "Completed":
                continue
            key = (g.cluster_uuid or "N/A", str(g.clique_id) if g.clique_id is not None else "N/A")
            by_key.setdefault(key, []).append(g.gpu)
        for key, gpus in by_key.items():
            whole = len(gpus) == len(node.domain.gpus)
            groups.setdefault(key, []).append(node.name if whole else f"{node.name} GPU{','.join(map(str, gpus))}")
    return dict(sorted(groups.items(), key=lambda g: -len(g[1])))


def domain_outliers(nodes: Iterable[NodeRecord]) -> dict[str, str]:
    """Node -> why it is not in the lease's domain (its clique/ClusterUUID is not the one most nodes share)."""
    groups = list(_domain_groups(nodes).items())
    out: dict[str, str] = {}
    for (uuid, clique), names in groups[1:]:
        for name in names:
            node = name.split(" GPU")[0]
            out[node] = (f"{name}: clique {clique}, ClusterUUID {uuid}; the lease's other nodes are in clique "
                         f"{groups[0][0][1]}, ClusterUUID {groups[0][0][0]}")
    return out


def domain_overview(nodes: Iterable[NodeRecord]) -> str:
    """Which nodes share a ClusterUUID and clique: one row per (ClusterUUID, clique), the nodes (or GPUs) in it.
    More than one row is more than one NVLink domain in the lease."""
    groups = _domain_groups(nodes)
    if not groups:
        return ""
    rows = "".join(f"<tr><td>{escape(clique)}</td><td><code>{escape(uuid)}</code></td>"
                   f"<td>{escape(', '.join(names))}</td></tr>" for (uuid, clique), names in groups.items())
    verdict = ("one NVLink domain" if len(groups) == 1 else
               f"<b>{len(groups)} NVLink domains where one was expected</b>")
    return (f'<div class="fabric-domains" data-domains="{len(groups)}"><p>{verdict}: nodes by clique and '
            f'ClusterUUID (GPUs still training are left out)</p><table class="fabric"><tr><th>clique</th>'
            f"<th>ClusterUUID</th><th>nodes</th></tr>{rows}</table></div>")


def fabric_section(runs: Iterable[RunRecord]) -> str:
    """The report's Fabric section: each rig's latest run that recorded a fabric (topology, C2C, NVLink domain),
    each node in it, the nodes with differences first; nothing when no run recorded one."""
    latest: dict[str, RunRecord] = {}
    for run in runs:  # oldest first: the last one with a fabric wins
        if any(n.topology or n.c2c or n.domain for n in run.nodes):
            latest[run.rig] = run
    if not latest:
        return ""  # older histories, or suites without test_topology: no empty section to scroll past
    out = ['<section id="fabric"><h2>Fabric</h2>']
    grids = []
    overviews = []
    for rig in sorted(latest):
        run = latest[rig]
        overview = domain_overview(run.nodes)
        outliers = domain_outliers(run.nodes)
        if overview:
            overviews.append(f'<h3>{escape(rig)} <span class="muted">run {escape(run.run_id)}</span></h3>{overview}')
        for node in run.nodes:
            if node.topology is None and node.c2c is None and node.domain is None:
                continue
            if node.topology is not None:
                grid = fabric_grid(node.name, node.topology, rig, run.run_id)
            else:
                grid = (f'<div class="fabric-node" data-node="{escape(node.name, quote=True)}" '
                        f'data-rig="{escape(rig, quote=True)}"><h3>{escape(node.name)} <span class="muted">'
                        f'{escape(rig)} · run {escape(run.run_id)}</span></h3></div>')
            if node.c2c is not None or node.domain is not None:
                grid += coherent_html(node, outliers.get(node.name))
            found = (problems(node.topology) if node.topology is not None else []) + coherent_problems(node) + (
                [outliers[node.name]] if node.name in outliers else [])
            grids.append((not found, rig, node.name, grid))
    out.append('<p class="muted">Per node, <code>nvidia-smi topo -m</code> of the rig\'s latest run against '
               "its profile; a cell reads found ≠ expected where they differ. On coherent hosts, the NVLink-C2C "
               "links to the CPU, each GPU's fabric and IMEX's view follow.</p>")
    out.extend(overviews)
    grids.sort(key=lambda g: g[:3])
    out.extend(g[-1] for g in grids if not g[0])
    matching = [g for g in grids if g[0]]
    if matching:  # folded: at 8 am the reader wants the nodes that differ, not 16x16 grids that match
        out.append(f'<details class="fabric-matching"><summary>{len(matching)} node'
                   f'{"s" if len(matching) != 1 else ""} match their profile: '
                   f'{escape(", ".join(g[2] for g in matching))}</summary>{"".join(g[-1] for g in matching)}</details>')
    out.append("</section>")
    return f"<style>{STYLE}</style>" + "".join(out)
