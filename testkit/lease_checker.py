"""An independent check of lease grants: it trusts only what the competing processes logged."""

from __future__ import annotations

import json
from pathlib import Path


def load(paths: list[Path]) -> list[dict]:
    records = []
    for path in paths:
        if path.exists():
            records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def double_grants(records: list[dict]) -> list[str]:
    """Every moment two processes held one node: overlapping [granted, releasing] intervals on the system-wide
    monotonic clock, or a marker file that already existed when a holder tried to create it."""
    found = [f"{r['pid']} found {node} already marked held" for r in records for node in r["clashes"]]
    by_node: dict[str, list[tuple[float, float, int]]] = {}
    for r in records:
        for node in r["nodes"]:
            by_node.setdefault(node, []).append((r["granted"], r["releasing"], r["pid"]))
    for node, spans in by_node.items():
        spans.sort()
        for (start_a, end_a, pid_a), (start_b, _end_b, pid_b) in zip(spans, spans[1:], strict=False):
            if start_b < end_a:
                found.append(f"{node}: pid {pid_b} granted at {start_b:.4f} while pid {pid_a} held it "
                             f"({start_a:.4f}-{end_a:.4f})")
    return found
