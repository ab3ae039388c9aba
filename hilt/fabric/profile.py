"""Platform profiles: the fabric a platform was designed to have, one YAML file per platform.

Profiles live in `hilt/profiles/<name>.yaml`; rigs.yaml names one per node. The `probes:` section is
free-form on purpose: it belongs to the probes (sizes, repeats, NCCL arguments) and is read there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hilt.errors import ConfigError

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
_PAIR = re.compile(r"^GPU(\d+)-GPU(\d+)$")
_LINK_VALUE = re.compile(r"^(NV\d+|PIX|PXB|PHB|NODE|SYS|SOC|PSB)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopologySpec(_Strict):
    default_link: str | None = None
    """The link between every GPU pair not listed in `pairs` (e.g. NV18 on an NVSwitch baseboard)."""
    pairs: dict[str, str] = Field(default_factory=dict)
    """Exceptions to the default, keyed "GPUi-GPUj" (either order), e.g. the DGX-1 hybrid cube mesh."""

    @field_validator("default_link")
    @classmethod
    def _known_default(cls, v: str | None) -> str | None:
        if v is not None and not _LINK_VALUE.match(v):
            raise ValueError(f"{v!r} is not a topology value (NV<n>, PIX, PXB, PHB, NODE, SYS, SOC)")
        return v

    @field_validator("pairs")
    @classmethod
    def _known_pairs(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _PAIR.match(key):
                raise ValueError(f"pair key {key!r} must look like 'GPU0-GPU1'")
            if not _LINK_VALUE.match(str(value)):
                raise ValueError(f"pair {key}: {value!r} is not a topology value (NV<n>, PIX, PXB, ...)")
        return v


class NvlinkSpec(_Strict):
    active_links_per_gpu: int = Field(ge=0)
    min_link_speed_gbps: float | None = Field(default=None, gt=0)
    inactive_links: list[int] = Field(default_factory=list)
    """Links the design leaves down (e.g. 4,5,10,11,16,17 on bridged H100 PCIe); not reported."""


class DtNodeSpec(_Strict):
    compatible: str | None = None


class DevicetreeSpec(_Strict):
    parent: str = "firmware"
    """Node under /sys/firmware/devicetree/base that holds the NVLink nodes."""
    nodes: dict[str, DtNodeSpec]
    node_prefix: str = "nvlink-"
    """Nodes under `parent` with this prefix that the profile does not list are reported as unexpected."""


class Profile(_Strict):
    name: str
    description: str = ""
    gpu_count: int = Field(ge=1)
    gpu_name: str | None = None
    driver: str | None = None
    topology: TopologySpec
    nvlink: NvlinkSpec
    nic_locality: dict[str, dict[str, str]] | None = None
    """{"GPU0": {"mlx5_0": "PIX"}}: the cell expected between a GPU and a NIC (column or device name)."""
    devicetree: DevicetreeSpec | None = None
    probes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _pairs_complete(self) -> Profile:
        for key in self.topology.pairs:
            a, b = (int(x) for x in _PAIR.match(key).groups())  # type: ignore[union-attr]
            if a == b or max(a, b) >= self.gpu_count:
                raise ValueError(f"topology.pairs: {key} is not a pair of distinct GPUs below {self.gpu_count}")
        if self.topology.default_link is None:
            missing = [f"GPU{a}-GPU{b}" for a, b in self.gpu_pairs() if self._pair_value(a, b) is None]
            if missing:
                raise ValueError(f"topology: no default_link and no entry for {', '.join(missing[:6])}")
        return self

    def gpu_pairs(self) -> list[tuple[int, int]]:
        return [(a, b) for a in range(self.gpu_count) for b in range(a + 1, self.gpu_count)]

    def _pair_value(self, a: int, b: int) -> str | None:
        pairs = self.topology.pairs
        return pairs.get(f"GPU{a}-GPU{b}") or pairs.get(f"GPU{b}-GPU{a}")

    def expected_link(self, a: int, b: int) -> str:
        """The expected topology cell between GPU a and GPU b."""
        value = self._pair_value(a, b) or self.topology.default_link
        assert value is not None  # guaranteed by _pairs_complete
        return value


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def _format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a profile by name (hilt/profiles/<name>.yaml) or by path; ConfigError names file and field."""
    text_name = str(name_or_path)
    candidate = Path(text_name)
    if text_name.endswith((".yaml", ".yml")) or "/" in text_name or candidate.exists():
        path = candidate
    else:
        path = PROFILES_DIR / f"{text_name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile {text_name!r}: known profiles are {', '.join(known_profiles())}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile is a mapping with gpu_count, topology, nvlink, ...")
    data.setdefault("name", path.stem)
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_format_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
