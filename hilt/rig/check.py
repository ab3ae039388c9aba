"""`hilt rigs check`: the whole chain from rigs.yaml to a gate that can decide, checked before any rack starts,
and the credential references and TLS settings that must hold by then.

rigs.yaml can be valid and still lead to a gate that can only end inconclusive: a profile that does not exist or
does not validate, a default image or suite that is not there, or a probe plan that never measures a size the
baselines gate. Each problem is one line naming the rig, the node, the profile and the entry or plan.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hilt
from hilt.errors import ConfigError
from hilt.gate.baselines import load_baselines
from hilt.gate.coverage import plan_gaps
from hilt.probes.settings import ProbeSettings, planned_for_profile, planned_metrics
from hilt.profiles.model import load_profile
from hilt.rig.config import Inventory, RigConfig
from hilt.rig.credentials import Secret
from hilt.rig.provider import load_provider
from hilt.util import safe_yaml
from hilt.util.safe_yaml import YamlDocument


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
    return [Path(rigs_file).resolve().parent / "suites", Path(hilt.__file__).resolve().parent / "suites"]


def _suite_names(suite_dirs: Iterable[Path]) -> set[str]:
    return {p.stem for d in suite_dirs if d.is_dir() for p in d.glob("test_*.py")}


def check_chain(inventory: Inventory, suite_dirs: Iterable[Path] = (), rig_names: list[str] | None = None
                ) -> list[str]:
    """Every problem between rigs.yaml and a decidable gate, one line each (empty: the chain holds)."""
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


def check_credentials(inv: Inventory, rig_names: list[str] | None = None) -> list[str]:
    """Problems with credential references that are not set now, each naming file:line and field."""
    try:
        doc: YamlDocument | None = safe_yaml.load_file(inv.source)
    except ConfigError:
        doc = None  # the file changed or went away since it was loaded: report fields without lines
    problems = []
    for rig_name in rig_names or list(inv.rigs):
        for node_name, node in inv.rig(rig_name).nodes.items():
            for field in ("username", "password"):
                secret: Secret = getattr(node.bmc, field)
                if str(secret).startswith("literal:"):
                    continue
                problem = secret.problem()
                if problem:
                    loc = ("rigs", rig_name, "nodes", node_name, "bmc", field)
                    dotted = ".".join(loc)
                    line = doc.line(loc) if doc is not None else None
                    problems.append(f"{inv.source}:{line or '?'}: {dotted}: {problem}")
    return problems


def check_tls(inv: Inventory, rig_names: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the BMCs' TLS settings: a CA bundle that is not a readable file is a problem;
    verification turned off (``verify: false``) is allowed, and always shown."""
    try:
        doc: YamlDocument | None = safe_yaml.load_file(inv.source)
    except ConfigError:
        doc = None
    problems, warnings = [], []
    for rig_name in rig_names or list(inv.rigs):
        for node_name, node in inv.rig(rig_name).nodes.items():
            loc = ("rigs", rig_name, "nodes", node_name, "bmc", "verify")
            where = f"{inv.source}:{(doc.line(loc) if doc is not None else None) or '?'}: {'.'.join(loc)}"
            verify = node.bmc.verify
            if verify is False:
                warnings.append(f"{where}: TLS verification is off for {node.bmc.url}: anyone on the path can "
                                "read the BMC password; give a CA bundle instead")
            elif isinstance(verify, str):
                path = Path(verify).expanduser()
                if not path.is_file() or not os.access(path, os.R_OK):
                    problems.append(f"{where}: CA bundle {verify} is not a readable file")
    return problems, warnings
