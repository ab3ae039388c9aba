"""What the probes measure (sizes, repeats, limits): the profile's ``probes`` section plus command-line overrides.

Defaults suit the simulated rack (gloo on two CPU cores); a real platform profile names its own plan
(:mod:`hilt.probes.plan`, documented per profile in docs/probes.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from hilt.errors import ConfigError
from hilt.probes.plan import (
    NcclTestsPlan,
    PlannedMetric,
    ProbesSpec,
    c2c_planned,
    nccl_planned,
    nvbandwidth_planned,
    size_bytes,
    torch_planned,
)


def parse_size(text: str, where: str = "--probe-sizes") -> int:
    """``16M`` -> 16777216. Binary units, as nccl-tests reads ``-b 8 -e 8G``."""
    try:
        return size_bytes(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_sizes(text: str, where: str = "--probe-sizes") -> list[int]:
    """``1M,16M,1G`` -> byte counts, in the order given."""
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"{where}: no sizes given; write e.g. 1M,16M,1G")
    return [parse_size(p, where) for p in parts]


@dataclass(frozen=True)
class ProbeSettings:
    sizes: tuple[int, ...] = (2**20, 4 * 2**20, 16 * 2**20)
    repeats: int = 5
    warmup: int = 2
    iters: int = 1
    dtype: str = "float32"
    timeout_s: float = 180.0
    cpu_procs_per_node: int = 2
    ddp_grad_mb: float = 16.0
    ddp_steps: int = 5
    copy_sizes: tuple[int, ...] = (64 * 2**20, 256 * 2**20)
    nccl: NcclTestsPlan = NcclTestsPlan()

    @property
    def nccl_tests_binaries(self) -> tuple[str, ...]:
        return tuple(self.nccl.binaries)

    @property
    def nccl_tests_args(self) -> tuple[str, ...]:
        return self.nccl.args()

    @property
    def mpi_launcher(self) -> str | None:
        return self.nccl.mpi_launcher

    @classmethod
    def from_profile(cls, profile_probes: ProbesSpec | Mapping[str, object] | None, sizes: list[int] | None = None,
                     repeats: int | None = None) -> ProbeSettings:
        """Build from a profile's ``probes:`` section; explicit ``sizes``/``repeats`` (command line) win."""
        spec = _spec(profile_probes)
        values = {k: v for k, v in spec.model_dump(exclude_none=True).items() if k != "nccl"}
        for name in ("sizes", "copy_sizes"):
            if name in values:
                values[name] = tuple(values[name])
        settings = replace(cls(), **values)
        if spec.nccl is not None:
            settings = replace(settings, nccl=spec.nccl)
        if sizes is not None:
            if not sizes:
                raise ConfigError("--probe-sizes: no sizes given")
            settings = replace(settings, sizes=tuple(int(s) for s in sizes))
            # the sizes asked for are the sizes measured, by every collective probe: nccl-tests sweeps from the
            # smallest to the largest (a gated size outside them is then named as not measured, never passed)
            settings = replace(settings, nccl=settings.nccl.model_copy(
                update={"min_bytes": min(sizes), "max_bytes": max(sizes)}))
        if repeats is not None:
            if repeats < 1:
                raise ConfigError(f"--probe-repeats: {repeats} must be >= 1")
            settings = replace(settings, repeats=int(repeats))
        return settings


def _spec(raw: ProbesSpec | Mapping[str, object] | None) -> ProbesSpec:
    if isinstance(raw, ProbesSpec):
        return raw
    try:
        return ProbesSpec.model_validate(dict(raw or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"profile probes.{where}: {first['msg'].removeprefix('Value error, ')}") from None


def planned_for_profile(profile: Any, nodes: int = 1) -> list[PlannedMetric]:
    """Everything a profile plans to measure: its ``probes:`` plan, and on one node the probes its other sections
    name (section_planned)."""
    out = planned_metrics(ProbeSettings.from_profile(profile.probes), nodes)
    if nodes == 1:
        out += section_planned(profile)
    return out


def section_planned(profile: Any) -> list[PlannedMetric]:
    """What one node measures for the profile's top-level sections beside ``probes:``: ``nvbandwidth:`` testcases
    and the copy probe through NVLink-C2C (``c2c: bandwidth:``)."""
    out: list[PlannedMetric] = []
    if getattr(profile, "nvbandwidth", None) is not None:
        out += nvbandwidth_planned(profile.nvbandwidth.testcases, profile.gpu_count)
    c2c = getattr(profile, "c2c", None)
    if c2c is not None and c2c.bandwidth is not None:
        out += c2c_planned(c2c.bandwidth.testcases, profile.gpu_count)
    return out


def planned_metrics(settings: ProbeSettings, nodes: int = 1) -> list[PlannedMetric]:
    """The gate-relevant series these settings will measure on one node (``nodes`` = 1) or across the lease."""
    out = torch_planned(list(settings.sizes), settings.dtype, nodes)
    if nodes == 1 or settings.mpi_launcher:
        out += nccl_planned(settings.nccl, nodes)
    return out
