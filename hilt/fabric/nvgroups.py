"""NVLink groups: which GPUs of a node reach each other over NVLink, and what kind of fabric joins them.

Kubernetes' scheduler sees a GPU count only; NVLink reaches placement through the device plugin's preferred
allocation, which should hand a pod GPUs of one group. A group here is a connected set of GPUs over ``NV<n>``
cells of ``nvidia-smi topo -m`` (directly or through other GPUs of the group). The fabric is ``nvswitch`` when
one group holds every GPU (three or more) with the same bond between every pair, which is how an NVSwitch
baseboard shows in ``topo -m`` (a direct all-to-all mesh of that shape reads the same, and places the same);
``direct`` for any other NVLink (bridged pairs, a hybrid cube mesh); ``none`` without NVLink. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from hilt.profiles.model import Profile

FabricKind = Literal["nvswitch", "direct", "none"]
_NV = re.compile(r"^NV(\d+)$")


@dataclass(frozen=True)
class NvlinkGroups:
    """The node's NVLink groups (GPU indices, each group sorted, groups ordered by their first GPU)."""

    groups: tuple[tuple[int, ...], ...]
    kind: FabricKind

    @property
    def group_size(self) -> int | None:
        """The size every group has; None when there is no group or their sizes differ."""
        sizes = {len(g) for g in self.groups}
        return sizes.pop() if len(sizes) == 1 else None

    @property
    def largest(self) -> int:
        return max((len(g) for g in self.groups), default=0)

    def group_of(self, gpu: int) -> tuple[int, ...] | None:
        return next((g for g in self.groups if gpu in g), None)


def nvlink_groups(gpus: Sequence[int], link: Callable[[int, int], str | None]) -> NvlinkGroups:
    """Groups of ``gpus`` given ``link(a, b)``, the topology cell between two of them (None: not shown)."""
    parent = {g: g for g in gpus}

    def root(g: int) -> int:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    widths: dict[tuple[int, int], int] = {}
    for i, a in enumerate(gpus):
        for b in gpus[i + 1:]:
            match = _NV.match((link(a, b) or "").strip())
            if match:
                widths[(a, b)] = int(match.group(1))
                parent[root(a)] = root(b)
    linked = {g for pair in widths for g in pair}
    members: dict[int, list[int]] = {}
    for g in gpus:
        if g in linked:
            members.setdefault(root(g), []).append(g)
    groups = tuple(sorted(tuple(sorted(m)) for m in members.values()))
    if not groups:
        return NvlinkGroups((), "none")
    pairs = len(gpus) * (len(gpus) - 1) // 2
    switched = (len(groups) == 1 and len(groups[0]) == len(gpus) >= 3 and len(widths) == pairs
                and len(set(widths.values())) == 1)
    return NvlinkGroups(groups, "nvswitch" if switched else "direct")


def profile_groups(profile: Profile) -> NvlinkGroups:
    """The groups a platform is designed with (its profile's topology, which test_topology verifies)."""
    return nvlink_groups(list(range(profile.gpu_count)), profile.expected_link)
