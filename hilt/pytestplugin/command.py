"""The pytest command line of a gate run: what `hilt run` passes to pytest, and what a rollout wave runs.

One place, because the two drifted apart before: a gate run asks this plugin for a rig session (even for a
team's conftest-free suite directory), decides the release gate whatever ``-k`` selects, and, unless the caller
chose its own xdist setting, runs one xdist worker per leased node so that the nodes measure side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def gate_run_args(*, suites: str | Path | None, rigs_file: str | Path, reports: str | Path, rig: str | None = None,
                  image: str | None = None, lease_store: str | None = None, no_boot: bool = False,
                  extra: Sequence[str] = ()) -> list[str]:
    """pytest's arguments for a gate run of ``suites`` (default: the reference suites, ``hilt.suites``);
    ``extra`` goes to pytest as it is."""
    target = [str(suites)] if suites is not None else ["--pyargs", "hilt.suites"]
    args = [*target, "-o", "hilt_rig_suites=true", "--rigs-file", str(rigs_file), "--hilt-reports", str(reports),
            "-p", "no:cacheprovider", "--gate"]
    if rig:
        args += ["--rig", rig]
    if image:
        args += ["--image", image]
    if lease_store:
        args += ["--lease-store", lease_store]
    if no_boot:
        args.append("--no-boot")
    args += list(extra)
    if not _chooses_xdist(extra):
        args += ["-n", "1", "--workers-from-lease"]  # one xdist worker per leased node
    return args


def _chooses_xdist(args: Sequence[str]) -> bool:
    """Whether the caller set the worker count (-n, --numprocesses) or turned xdist off (-p no:xdist)."""
    return any(a in ("-n", "--numprocesses", "no:xdist") or a.startswith(("-n", "--numprocesses=")) for a in args)
