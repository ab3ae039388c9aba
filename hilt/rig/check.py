"""`hilt rigs check`: the whole chain from rigs.yaml to a gate that can decide, checked before any rack starts.

rigs.yaml can be valid and still lead to a gate that can only end inconclusive: a profile that does not exist or
does not validate, a default image or suite that is not there, or a probe plan that never measures a size the
baselines gate. Each problem is one line naming the rig, the node, the profile and the entry or plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hilt.errors import ConfigError
from hilt.rig.config import Inventory, RigConfig, load_provider


def _planned_nodes(rig_name: str, rig: RigConfig) -> tuple[dict[str, str], set[str] | None, str | None]:
    """(node -> profile, image names the provider serves or None if unknown, a problem) without starting it."""
    nodes = {name: cfg.profile for name, cfg in rig.nodes.items()}
    if rig.provider is None:
        return nodes, set(), None
    try:
        provider = load_provider(rig.provider)
    except ConfigError as exc:
        return nodes, None, f"rig {rig_name}: provider: {exc}"
    planned = getattr(provider, "planned", None)
    if planned is None:
        return nodes, None, None
    try:
        shape: dict[str, Any] = planned(rig_name, dict(rig.provider.options))
    except ConfigError as exc:
        return nodes, None, f"rig {rig_name}: {exc}"
    return {**nodes, **shape.get("nodes", {})}, set(shape.get("images", [])), None


def suite_dirs(rigs_file: Path) -> list[Path]:
    """Where suite modules live: the rigs file's ``suites/`` and the package's reference suites."""
    import hilt

    return [Path(rigs_file).resolve().parent / "suites", Path(hilt.__file__).resolve().parent / "suites"]


def _suite_names(suite_dirs: Iterable[Path]) -> set[str]:
    return {p.stem for d in suite_dirs if d.is_dir() for p in d.glob("test_*.py")}


def check_chain(inventory: Inventory, suite_dirs: Iterable[Path] = (), rig_names: list[str] | None = None
                ) -> list[str]:
    """Every problem between rigs.yaml and a decidable gate, one line each (empty: the chain holds)."""
    from hilt.gate.baselines import load_baselines
    from hilt.gate.coverage import plan_gaps
    from hilt.probes.settings import ProbeSettings, planned_for_profile, planned_metrics
    from hilt.profiles.model import load_profile

    problems: list[str] = []
    baselines_dir = Path(inventory.baselines_dir)  # a profile without a baseline file has nothing to gate here
    suites = _suite_names(suite_dirs)
    for rig_name in rig_names or list(inventory.rigs):
        rig = inventory.rigs[rig_name]
        nodes, provided, problem = _planned_nodes(rig_name, rig)
        if problem:
            problems.append(problem)
        if rig.default_image and provided is not None and rig.default_image not in inventory.images \
                and rig.default_image not in provided:
            known = sorted(set(inventory.images) | provided)
            problems.append(f"rig {rig_name}: default_image {rig.default_image!r} is not an image of rigs.yaml "
                            f"or of the rig's provider (known: {', '.join(known) or 'none'})")
        if suites:
            for suite in rig.suites or []:
                if Path(suite).stem not in suites:
                    problems.append(f"rig {rig_name}: suites: {suite!r} is not a suite module "
                                    f"(known: {', '.join(sorted(suites))})")
        profiles = {}
        for node, profile_name in nodes.items():
            if profile_name not in profiles:
                try:
                    profiles[profile_name] = load_profile(profile_name)
                except ConfigError as exc:
                    profiles[profile_name] = None
                    problems.append(f"rig {rig_name} node {node}: profile {profile_name}: {exc}")
        bsets = {}
        for profile_name, profile in profiles.items():
            if profile is None or not (baselines_dir / f"{profile_name}.yaml").is_file():
                bsets[profile_name] = None
                continue
            try:
                bsets[profile_name] = load_baselines(baselines_dir, profile_name)
            except ConfigError as exc:
                bsets[profile_name] = None
                problems.append(f"rig {rig_name}: {exc}")
        for node, profile_name in nodes.items():
            profile, bset = profiles.get(profile_name), bsets.get(profile_name)
            if profile is None or bset is None:
                continue
            settings = ProbeSettings.from_profile(profile.probes)
            for gap in plan_gaps(bset, planned_for_profile(profile)):
                problems.append(f"rig {rig_name} node {node} (profile {profile_name}): gated entry {gap} "
                                f"(plan: nccl-tests {' '.join(settings.nccl_tests_args)}; torch sizes "
                                f"{', '.join(str(s) for s in settings.sizes)})")
        shared = set(nodes.values())
        if len(nodes) > 1 and len(shared) == 1:
            profile_name = next(iter(shared))
            profile, bset = profiles.get(profile_name), bsets.get(profile_name)
            if profile is not None and bset is not None:
                settings = ProbeSettings.from_profile(profile.probes)
                for gap in plan_gaps(bset, planned_metrics(settings, len(nodes)), len(nodes)):
                    problems.append(f"rig {rig_name} lease of {len(nodes)} (profile {profile_name}): "
                                    f"gated entry {gap}")
    return problems
