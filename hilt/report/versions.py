"""What ran in a run, version by version, and what differs between two runs.

Why a module of its own: a change point ("busbw fell 17% at night 20") is only actionable with what else
changed between the two runs around it (the driver went 550.54 -> 555.42 on node1 and node2), and
``hilt report --compare`` needs the same diff. Both read it from the run record, so the two cannot disagree.

Where each version lives in a record: the image is the run's; image id, kernel, driver, BIOS and BMC firmware
are per node (:class:`hilt.record.run_record.NodeRecord`, from the BMC and the booted OS); NCCL is per metric
(``nccl_version`` label, per node where the metric has one); ``RunRecord.versions`` holds run-wide ones
(hilt, python, and whatever an importer put there).
"""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from dataclasses import dataclass
from html import escape

from hilt.history.series import point_node
from hilt.record.run_record import RunRecord

#: Stable keys (``--json``) in reading order, with the words a person reads.
VERSION_LABELS = {
    "image": "image",
    "driver": "driver",
    "nccl": "NCCL",
    "kernel": "kernel",
    "bios": "BIOS",
    "bmc_firmware": "BMC firmware",
}
_NODE_FIELDS = {"image": "image_id", "kernel": "kernel", "driver": "driver", "bios": "bios_version",
                "bmc_firmware": "bmc_firmware"}

RUN = ""  # the "node" of a run-wide version


def _order(what: str) -> tuple[int, str]:
    keys = list(VERSION_LABELS)
    return (keys.index(what), what) if what in VERSION_LABELS else (len(keys), what)


def run_versions(record: RunRecord) -> dict[tuple[str, str], str]:
    """Every version a run recorded: ``{(what, node): value}``; node is ``""`` for a run-wide one."""
    out: dict[tuple[str, str], str] = {}
    if record.image:
        out[("image", RUN)] = record.image
    for key, value in record.versions.items():
        out[(key, RUN)] = value
    for node in record.nodes:
        for what, attr in _NODE_FIELDS.items():
            value = getattr(node, attr)
            if value:
                out[(what, node.name)] = str(value)
    nccl: dict[str, set[str]] = defaultdict(set)
    for metric in record.metrics:
        version = metric.labels.get("nccl_version")
        if version:
            names = [n for n in point_node(metric).split("+") if n] or [RUN]
            for name in names:
                nccl[name].add(version)
    for name, found in nccl.items():
        out[("nccl", name)] = ",".join(sorted(found))
    return out


@dataclass(frozen=True)
class VersionChange:
    """One version that differs between two runs, on the nodes listed (none listed: run-wide)."""

    what: str  # a key of VERSION_LABELS, or a RunRecord.versions key
    before: str | None  # None: not recorded in the earlier run
    after: str | None
    nodes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return VERSION_LABELS.get(self.what, self.what)

    def text(self) -> str:
        """``driver 550.54 → 555.42 (node1, node2)``: what the changes table and the compare page print."""
        where = f" ({', '.join(self.nodes)})" if self.nodes else ""
        return f"{self.label} {self.before or 'not recorded'} → {self.after or 'not recorded'}{where}"

    def to_json(self) -> dict[str, object]:
        return {"what": self.what, "before": self.before, "after": self.after, "nodes": list(self.nodes)}


def version_diff(before: RunRecord, after: RunRecord) -> list[VersionChange]:
    """What differs between two runs, one entry per (what, before, after), its nodes merged.

    A node that is in only one of the runs is not a version change (the compare page lists nodes); a value
    recorded in only one run is (``not recorded → 555.42``). A run-wide change that the nodes also show
    (``versions["driver"]`` and each node's driver) is listed once, with the nodes.
    """
    a, b = run_versions(before), run_versions(after)
    nodes_a = {n.name for n in before.nodes}
    nodes_b = {n.name for n in after.nodes}
    grouped: dict[tuple[str, str | None, str | None], set[str]] = defaultdict(set)
    for what, node in set(a) | set(b):
        if node != RUN and (node in nodes_a) != (node in nodes_b):
            continue  # a node added or removed, not a version change
        va, vb = a.get((what, node)), b.get((what, node))
        if va != vb:
            grouped[(what, va, vb)].add(node)
    changes = [VersionChange(what, va, vb, tuple(sorted(n for n in where if n != RUN)))
               for (what, va, vb), where in grouped.items()]
    return sorted(changes, key=lambda c: (_order(c.what), c.nodes, c.before or "", c.after or ""))


def versions_html(changes: tuple[VersionChange, ...] | list[VersionChange],
                  compare: tuple[str, str] | None = None) -> str:
    """The version changes as an HTML list (every value escaped: versions come from the nodes and BMCs), and
    with ``compare`` (run before, run after) the command that shows everything else that differs."""
    hint = ""
    if compare and compare[0] != compare[1]:
        hint = (f'<div class="muted compare-hint">all differences: <code>hilt report --compare '
                f"{escape(_shell_word(compare[0]))} {escape(_shell_word(compare[1]))}</code></div>")
    if not changes:
        return '<span class="muted no-version-change">no recorded version changed</span>' + hint
    items = "".join(
        f'<li class="version-change" data-what="{escape(c.what, quote=True)}">{escape(c.label)} '
        f'<b>{escape(c.before or "not recorded")} → {escape(c.after or "not recorded")}</b>'
        + (f' <span class="muted">({escape(", ".join(c.nodes))})</span>' if c.nodes else "") + "</li>"
        for c in changes)
    return f'<ul class="versions">{items}</ul>' + hint


def _shell_word(text: str) -> str:
    """A run id as one shell word, quoted only when it needs it (ids are usually plain)."""
    return text if re.fullmatch(r"[A-Za-z0-9._:+@%/=-]+", text) else shlex.quote(text)
