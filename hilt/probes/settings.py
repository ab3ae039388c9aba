"""What the probes measure (sizes, repeats, limits): the profile's ``probes`` section plus command-line overrides.

Defaults suit the simulated rack (gloo on two CPU cores); a real platform profile names its own sizes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from hilt.errors import ConfigError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNIT = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str, where: str = "--probe-sizes") -> int:
    """``16M`` -> 16777216. Binary units, as nccl-tests reads ``-b 8 -e 8G``."""
    m = _SIZE.match(str(text))
    if not m:
        raise ConfigError(f"{where}: {text!r} is not a size; write bytes or a number with K, M, G or T (e.g. 16M)")
    value = float(m.group(1)) * _UNIT[m.group(2).upper()]
    if value < 1 or value != int(value):
        raise ConfigError(f"{where}: {text!r} must be a whole number of bytes >= 1")
    return int(value)


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
    nccl_tests_binaries: tuple[str, ...] = ("all_reduce_perf",)
    nccl_tests_args: tuple[str, ...] = ("-b", "1M", "-e", "64M", "-f", "2")
    mpi_launcher: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_profile(cls, profile_probes: Mapping[str, object] | None, sizes: list[int] | None = None,
                     repeats: int | None = None) -> ProbeSettings:
        """Build from a profile's ``probes:`` mapping; explicit ``sizes``/``repeats`` (command line) win."""
        data = dict(profile_probes or {})
        known = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, object] = {}
        extra: dict[str, object] = {}
        for key, raw in data.items():
            name = key.replace("-", "_")
            if name not in known:
                extra[key] = raw
                continue
            values[name] = _coerce(name, raw)
        settings = replace(cls(), **values, extra=extra)  # type: ignore[arg-type]
        if sizes is not None:
            if not sizes:
                raise ConfigError("--probe-sizes: no sizes given")
            settings = replace(settings, sizes=tuple(int(s) for s in sizes))
        if repeats is not None:
            if repeats < 1:
                raise ConfigError(f"--probe-repeats: {repeats} must be >= 1")
            settings = replace(settings, repeats=int(repeats))
        return settings


def _coerce(name: str, raw: object) -> object:
    where = f"profile probes.{name}"
    if name in ("sizes", "copy_sizes"):
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)) or not items:
            raise ConfigError(f"{where}: expected a list of sizes like [1M, 16M], got {raw!r}")
        return tuple(parse_size(str(i), where) for i in items)
    if name in ("nccl_tests_binaries", "nccl_tests_args"):
        items = raw.split() if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{where}: expected a list of strings, got {raw!r}")
        return tuple(str(i) for i in items)
    if name in ("repeats", "warmup", "iters", "cpu_procs_per_node", "ddp_steps"):
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < (0 if name == "warmup" else 1):
            raise ConfigError(f"{where}: expected a positive integer, got {raw!r}")
        return raw
    if name in ("timeout_s", "ddp_grad_mb"):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw <= 0:
            raise ConfigError(f"{where}: expected a positive number, got {raw!r}")
        return float(raw)
    if name == "dtype":
        if raw not in ("float32", "float16", "bfloat16", "float64", "int32", "int64"):
            raise ConfigError(f"{where}: {raw!r} is not one of float32, float16, bfloat16, float64, int32, int64")
        return raw
    if name == "mpi_launcher":
        return None if raw is None else str(raw)
    return raw
