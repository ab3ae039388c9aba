"""Which nodes get the new image in which wave: pure functions of the rig's nodes and two options.

``--canary 1`` (a count) or ``--canary 25%`` (a share of the rig, rounded up) is the first wave; ``--waves
50%,100%`` are the later waves as cumulative shares (or counts) of the rig. The canary must leave at least one
node on the old image: without a control group there is nothing to compare the canary with in the same hour.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hilt.errors import ConfigError

_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)\s*", re.ASCII)  # ASCII: \d takes "١" (Arabic one)


@dataclass(frozen=True)
class WavePlan:
    """One wave: the nodes that boot the new image in it, and the nodes that stay on the old one meanwhile."""

    index: int  # 1 is the canary wave
    nodes: tuple[str, ...]
    control: tuple[str, ...]

    @property
    def name(self) -> str:
        return "canary" if self.index == 1 else f"wave {self.index}"


def _count(text: str, total: int, option: str) -> int:
    """``3`` or ``25%`` of ``total`` nodes (a share is rounded up: 25% of 3 nodes is 1 node, never 0)."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ConfigError(f"{option} {text!r}: expected a node count (1) or a share of the rig (25%)")
    value, percent = float(match.group(1)), match.group(2) == "%"
    if not math.isfinite(value):  # 400 digits read as inf, and int(inf) raises
        raise ConfigError(f"{option} {text[:40]!r}...: too large; expected a node count (1) or a share of the rig "
                          "(25%)")
    if percent:
        if not 0 < value <= 100:
            raise ConfigError(f"{option} {text!r}: a share must be above 0% and at most 100%")
        return max(1, math.ceil(total * value / 100 - 1e-9))
    if value != int(value) or value < 1:
        raise ConfigError(f"{option} {text!r}: a node count must be a whole number of at least 1")
    return int(value)


def _check_waves_grow(waves: str, parts: Sequence[str], total: int) -> None:
    """What the option itself says, whatever the rig: no empty wave (``50%,,100%``), each share above the one
    before (``50%,30%``, ``100%,100%``) and each count too, and no count beyond the rig (``--waves 50`` meant
    as 50% would put every node in one wave). Two shares that round to the same nodes on a small rig merge."""
    last: dict[bool, float] = {}
    for part in parts:
        match = _SIZE.fullmatch(part)
        if not part.strip():
            raise ConfigError(f"--waves {waves!r}: an empty wave between commas; expected cumulative shares "
                              "such as 50%,100%")
        if not match:
            continue  # _count names it
        value, percent = float(match.group(1)), match.group(2) == "%"
        if percent in last and value <= last[percent]:
            unit = "%" if percent else ""
            raise ConfigError(f"--waves {waves}: {part.strip()} is not above the {last[percent]:g}{unit} before it;"
                              " waves are cumulative and must grow, e.g. 50%,100%")
        if not percent and value > total:
            raise ConfigError(f"--waves {waves}: {part.strip()} nodes, but the rig has {total}; a count is at "
                              f"most {total} (for a share write {part.strip()}%)")
        last[percent] = value


def plan_waves(nodes: Sequence[str], canary: str = "1", waves: str = "100%") -> list[WavePlan]:
    """The waves, in order; every node is in exactly one wave and the last wave reaches every node.

    Nodes are taken in the order given (the caller sorts them), so the same rig and options give the same plan.
    """
    names = list(dict.fromkeys(nodes))
    total = len(names)
    if total < 2:
        raise ConfigError(f"--canary: a rollout needs at least 2 nodes (a canary and a control group); "
                          f"the rig has {total}")
    first = _count(canary, total, "--canary")
    if first >= total:
        raise ConfigError(f"--canary {canary}: that is {first} of the rig's {total} nodes; the canary must leave "
                          "at least one node on the old image as the control group")
    parts = waves.split(",")
    if not any(p.strip() for p in parts):
        raise ConfigError(f"--waves {waves!r}: expected cumulative shares such as 50%,100%")
    _check_waves_grow(waves, parts, total)
    cumulative = [first]
    for part in parts:
        reach = min(total, _count(part, total, "--waves"))
        if reach < cumulative[-1]:
            raise ConfigError(f"--waves {waves}: {part.strip()} reaches {reach} nodes, fewer than the "
                              f"{cumulative[-1]} before it; waves are cumulative and must grow")
        if reach > cumulative[-1]:
            cumulative.append(reach)
    if cumulative[-1] != total:
        raise ConfigError(f"--waves {waves}: the last wave reaches {cumulative[-1]} of {total} nodes; "
                          "end with 100% so that every node gets the image")
    plans = []
    for index, (start, end) in enumerate(zip([0, *cumulative], cumulative, strict=False), start=1):
        plans.append(WavePlan(index=index, nodes=tuple(names[start:end]), control=tuple(names[end:])))
    return plans
