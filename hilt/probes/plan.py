"""A profile's probe plan (its ``probes:`` section): the schema, and the measurements the plan will yield.

The plan is strict on purpose: an unknown key used to be filed under ``extra`` and ignored, so a profile that
wrote ``nccl: {min_bytes, max_bytes}`` ran nccl-tests' defaults and its gated sizes were never measured.
Each section is one model class; a new probe adds one class and one field of :class:`ProbesSpec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNIT = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}

TORCH_DTYPES = ("float32", "float16", "bfloat16", "float64", "int32", "int64")
NCCL_DTYPES = ("float", "half", "bfloat16", "double", "int32", "int8", "uint8", "int64", "uint32", "uint64")


def size_bytes(value: object) -> int:
    """``16M`` or ``16777216`` -> 16777216 (binary units, as nccl-tests reads ``-b 8 -e 8G``); ValueError else."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size; write bytes or a number with K, M, G or T (e.g. 16M)")
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a size; write bytes or a number with K, M, G or T (e.g. 16M)")
    number = float(m.group(1)) * _UNIT[m.group(2).upper()]
    if number < 1 or number != int(number):
        raise ValueError(f"{value!r} must be a whole number of bytes >= 1")
    return int(number)


def _size_list(value: object) -> object:
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, list | tuple):
        return [size_bytes(i) for i in items if str(i).strip()]
    return value


Size = Annotated[int, BeforeValidator(size_bytes)]
SizeList = Annotated[list[int], BeforeValidator(_size_list), Field(min_length=1)]


def _words(value: object) -> object:
    return value.split() if isinstance(value, str) else value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NcclTestsPlan(_Section):
    """nccl-tests (``all_reduce_perf`` ...) on one node: the sizes swept and how many GPUs take part."""

    binaries: Annotated[list[str], BeforeValidator(_words), Field(min_length=1)] = ["all_reduce_perf"]
    min_bytes: Size = 2**20
    """``-b``: the first message size."""
    max_bytes: Size = 64 * 2**20
    """``-e``: the last message size; every size min x factor^k up to it is measured."""
    step_factor: int = Field(default=2, ge=2)
    """``-f``: the multiplication factor between sizes."""
    gpus_per_node: int | None = Field(default=None, ge=1)
    """``-g``: GPUs per process; a profile fills in its ``gpu_count`` (every GPU of the node)."""
    iters: int | None = Field(default=None, ge=1)
    """``-n``: timed iterations per size (nccl-tests' default when omitted)."""
    warmup_iters: int | None = Field(default=None, ge=0)
    """``-w``: warm-up iterations."""
    dtype: Literal[NCCL_DTYPES] = "float"  # type: ignore[valid-type]
    """``-d``: the nccl-tests data type (the ``dtype`` label of its metrics)."""
    extra_args: Annotated[list[str], BeforeValidator(_words)] = []
    """Passed through after the arguments above (e.g. ``[-c, "0"]`` to skip validation)."""
    mpi_launcher: str | None = None
    """argv prefix for the lease-wide run, e.g. ``mpirun -np 16 -H a:8,b:8`` (one rank per GPU)."""

    @model_validator(mode="after")
    def _range(self) -> NcclTestsPlan:
        if self.min_bytes > self.max_bytes:
            raise ValueError(f"min_bytes ({self.min_bytes}) is larger than max_bytes ({self.max_bytes})")
        if any(a.startswith("-") and a[:2] in ("-b", "-e", "-f", "-g", "-d") for a in self.extra_args):
            raise ValueError("extra_args: -b/-e/-f/-g/-d are set by min_bytes/max_bytes/step_factor/"
                             "gpus_per_node/dtype")
        return self

    def sizes(self) -> list[int]:
        """Every size the sweep measures, as nccl-tests steps: min, min x f, ... while <= max."""
        out, size = [], self.min_bytes
        while size <= self.max_bytes:
            out.append(size)
            size *= self.step_factor
        return out

    def args(self) -> tuple[str, ...]:
        argv = ["-b", str(self.min_bytes), "-e", str(self.max_bytes), "-f", str(self.step_factor),
                "-d", self.dtype]
        if self.gpus_per_node is not None:
            argv += ["-g", str(self.gpus_per_node)]
        if self.iters is not None:
            argv += ["-n", str(self.iters)]
        if self.warmup_iters is not None:
            argv += ["-w", str(self.warmup_iters)]
        return (*argv, *self.extra_args)


class ProbesSpec(_Section):
    """A profile's ``probes:`` section. Omitted values take :class:`hilt.probes.settings.ProbeSettings`'s."""

    sizes: SizeList | None = None
    """torch all-reduce message sizes (``--probe-sizes`` overrides)."""
    repeats: int | None = Field(default=None, ge=1)
    warmup: int | None = Field(default=None, ge=0)
    iters: int | None = Field(default=None, ge=1)
    dtype: Literal[TORCH_DTYPES] | None = None  # type: ignore[valid-type]
    timeout_s: float | None = Field(default=None, gt=0)
    cpu_procs_per_node: int | None = Field(default=None, ge=1)
    """Ranks per node where the node has no GPU (gloo)."""
    ddp_grad_mb: float | None = Field(default=None, gt=0)
    ddp_steps: int | None = Field(default=None, ge=1)
    copy_sizes: SizeList | None = None
    nccl: NcclTestsPlan | None = None
    """nccl-tests; a profile always has one (its defaults, with every GPU of the node)."""

    @model_validator(mode="before")
    @classmethod
    def _dashes(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {str(k).replace("-", "_"): v for k, v in data.items()}
        return data


@dataclass(frozen=True)
class PlannedMetric:
    """A series the plan will measure: the gated metric's name and the labels that define it."""

    name: str
    labels: dict[str, str]
    scope: Literal["node", "lease"]


def nccl_planned(plan: NcclTestsPlan, nodes: int = 1) -> list[PlannedMetric]:
    """What nccl-tests will report on one node (``nodes`` = 1) or across the lease."""
    out = []
    for binary in plan.binaries:
        name = f"nccl.{binary.removesuffix('_perf')}.busbw"
        for size in plan.sizes():
            labels = {"size": str(size), "dtype": plan.dtype, "nodes": str(nodes), "tool": "nccl-tests",
                      "backend": "nccl"}
            if plan.gpus_per_node is not None:
                labels["gpus_per_node"] = str(plan.gpus_per_node)
            out.append(PlannedMetric(name, labels, "node" if nodes == 1 else "lease"))
    return out


def nvbandwidth_planned(testcases: list[str], gpu_count: int) -> list[PlannedMetric]:
    """What the nvbandwidth probe (a profile's top-level ``nvbandwidth:`` section) will report on one node:
    each testcase's SUM and every ordered GPU pair (host testcases: the GPUs' columns)."""
    out = []
    for name in testcases:
        labels = {"tool": "nvbandwidth", "gpus": str(gpu_count)}
        out.append(PlannedMetric(f"nvbandwidth.{name}", {**labels, "pair": "sum"}, "node"))
        rows = range(gpu_count) if name.startswith("device_to_device") else range(1)
        out += [PlannedMetric(f"nvbandwidth.{name}", {**labels, "pair": f"{r}-{c}"}, "node")
                for r in rows for c in range(gpu_count) if not (name.startswith("device_to_device") and r == c)]
    return out


def c2c_planned(testcases: list[str], gpu_count: int) -> list[PlannedMetric]:
    """What the copy probe through NVLink-C2C (a profile's ``c2c: bandwidth:``) will report on one node: each
    testcase for every GPU (hilt.probes.c2c_probe)."""
    return [PlannedMetric(f"c2c.{name}", {"tool": "nvbandwidth", "gpu": str(gpu), "gpus": str(gpu_count)},
                          "node") for name in testcases for gpu in range(gpu_count)]


def torch_planned(sizes: list[int], dtype: str, nodes: int = 1) -> list[PlannedMetric]:
    """What the torch all-reduce probe will report (backend and GPUs per node are the node's, not the plan's)."""
    return [PlannedMetric("torch.all_reduce.busbw", {"size": str(s), "dtype": dtype, "nodes": str(nodes),
                                                      "tool": "torch"}, "node" if nodes == 1 else "lease")
            for s in sizes]
