"""Baseline files: ``baselines/<profile>.yaml``, reviewed like code, one per platform profile.

Each entry is keyed by metric name and the labels it names (extra labels on a measured metric are ignored,
so an entry without ``nccl_version`` matches every NCCL version). ``gated`` chooses which series decide the
release: large messages, typically, since small ones are latency-bound and noisy. Format: docs/gate.md.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hilt.errors import ConfigError
from hilt.gate.judge import Baseline
from hilt.record.metrics import Metric
from hilt.util.safe_yaml import YamlDocument, load_file


def _stringify(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | dt.date):
        return str(value)
    return value


class Source(BaseModel):
    """Where a baseline came from: the run that measured it, or the public figure it was taken from."""

    model_config = ConfigDict(extra="forbid")
    run_id: str | None = None
    image: str | None = None
    date: str | None = None
    note: str | None = None
    url: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return _stringify(value)

    def describe(self) -> str:
        parts = [f"run {self.run_id}" if self.run_id else "", f"image {self.image}" if self.image else "",
                 self.date or "", self.note or "", self.url or ""]
        return ", ".join(p for p in parts if p)


class BaselineEntry(BaseModel):
    """One baselined series."""

    model_config = ConfigDict(extra="forbid")
    metric: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    value: float = Field(gt=0, allow_inf_nan=False)
    unit: str = ""
    tolerance: float = Field(default=0.05, gt=0, lt=1)
    higher_is_better: bool = True
    samples: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = None
    """The measurements ``value`` was taken from: they give the judge the baseline's spread."""
    source: Source = Field(default_factory=Source)

    @model_validator(mode="after")
    def _value_is_the_samples_mean(self) -> BaselineEntry:
        """The judge compares with ``value``; samples that say otherwise mean the file was edited by half."""
        if self.samples:
            mean = math.fsum(self.samples) / len(self.samples)
            if abs(self.value / mean - 1.0) > self.tolerance / 2:
                raise ValueError(f"value {self.value:.6g} disagrees with the mean of its {len(self.samples)} "
                                 f"samples ({mean:.6g}, {(self.value / mean - 1) * 100:+.1f}%) by more than "
                                 f"half the tolerance ({self.tolerance / 2:.1%}); re-promote the entry or fix "
                                 "value or samples")
        return self

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        return {str(k): _stringify(v) for k, v in value.items()} if isinstance(value, dict) else value

    @property
    def key(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.metric}{{{inner}}}"

    def matches(self, metric: Metric) -> bool:
        have = metric.label_dict
        return metric.name == self.metric and all(have.get(k) == v for k, v in self.labels.items())

    def to_baseline(self) -> Baseline:
        return Baseline(metric=self.metric, value=self.value, tolerance=self.tolerance,
                        higher_is_better=self.higher_is_better,
                        samples=tuple(self.samples) if self.samples else None, labels=dict(self.labels),
                        unit=self.unit, source={k: v for k, v in self.source.model_dump().items() if v})


class GateRule(BaseModel):
    """Gate a metric's series whose labels take one of the listed values (all series when none listed)."""

    model_config = ConfigDict(extra="forbid")
    metric: str = Field(min_length=1)
    labels: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("labels", mode="before")
    @classmethod
    def _values_as_lists(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {str(k): [_stringify(x) for x in (v if isinstance(v, list) else [v])] for k, v in value.items()}

    def matches(self, metric: Metric) -> bool:
        have = metric.label_dict
        return metric.name == self.metric and all(have.get(k) in vs for k, vs in self.labels.items())


class BaselineFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: str | None = None
    description: str | None = None
    gated: list[GateRule] = Field(default_factory=list)
    entries: list[BaselineEntry] = Field(default_factory=list)


@dataclass
class BaselineSet:
    """A profile's baselines and gating rules, as loaded from (and written back to) its file."""

    profile: str
    path: Path
    entries: list[BaselineEntry] = field(default_factory=list)
    gated: list[GateRule] = field(default_factory=list)
    description: str | None = None

    def find_entry(self, metric: Metric) -> BaselineEntry | None:
        """The matching entry naming the most labels (the first in the file on a tie)."""
        best: BaselineEntry | None = None
        for entry in self.entries:
            if entry.matches(metric) and (best is None or len(entry.labels) > len(best.labels)):
                best = entry
        return best

    def find(self, metric: Metric) -> Baseline | None:
        entry = self.find_entry(metric)
        return entry.to_baseline() if entry is not None else None

    def is_gated(self, metric: Metric) -> bool:
        return any(rule.matches(metric) for rule in self.gated)

    def upsert(self, entry: BaselineEntry) -> BaselineEntry | None:
        """Replace the entry with the same metric and labels (returned), or append a new one (None)."""
        for i, old in enumerate(self.entries):
            if old.metric == entry.metric and old.labels == entry.labels:
                self.entries[i] = entry
                return old
        self.entries.append(entry)
        return None

    def to_yaml(self) -> str:
        data: dict[str, Any] = {"profile": self.profile}
        if self.description:
            data["description"] = self.description
        data["gated"] = [r.model_dump(exclude_defaults=True) for r in self.gated]
        data["entries"] = [_entry_dict(e) for e in self.entries]
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110)

    def save(self, path: Path | None = None) -> Path:
        target = path or self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(self.to_yaml())
        tmp.replace(target)
        return target


def _entry_dict(entry: BaselineEntry) -> dict[str, Any]:
    data = entry.model_dump(exclude_none=True)
    data["source"] = {k: v for k, v in data.get("source", {}).items() if v is not None}
    if not data["source"]:
        del data["source"]
    return data


def _entry_name(raw: Any, index: int) -> str:
    if isinstance(raw, dict) and raw.get("metric"):
        labels = raw.get("labels") if isinstance(raw.get("labels"), dict) else {}
        inner = ",".join(f"{k}={v}" for k, v in sorted(labels.items(), key=lambda kv: str(kv[0])))
        return f"entry {index} ({raw['metric']}{{{inner}}})"
    return f"entry {index}"


def _describe_error(doc: YamlDocument, data: Any, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = list(first["loc"])
    line = doc.line(loc) or "?"
    where = ".".join(str(p) for p in loc) or "(top level)"
    if len(loc) >= 2 and loc[0] in ("entries", "gated") and isinstance(loc[1], int):
        raw = data.get(loc[0], [])[loc[1]] if isinstance(data.get(loc[0]), list) else None
        entry = _entry_name(raw, loc[1]) if loc[0] == "entries" else f"gated rule {loc[1]}"
        field_name = ".".join(str(p) for p in loc[2:]) or "(the entry itself)"
        where = f"{loc[0]}: {entry}, field {field_name}"
    more = f" (and {len(err.errors()) - 1} more problems)" if len(err.errors()) > 1 else ""
    return f"{doc.source}:{line}: {where}: {first['msg'].removeprefix('Value error, ')}{more}"


def available_profiles(directory: Path) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.yaml"))


def load_baseline_file(path: Path, profile: str | None = None) -> BaselineSet:
    """Parse and validate one baseline file; any problem is a ConfigError naming the file and the entry."""
    doc = load_file(path)  # duplicate keys, alias bombs, non-UTF-8: refused there, naming the line
    data = doc.data
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'gated' and 'entries', got {type(data).__name__}")
    try:
        parsed = BaselineFile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe_error(doc, data, err)) from None
    name = profile or parsed.profile or path.stem
    if parsed.profile is not None and parsed.profile != name:
        raise ConfigError(f"{path}: field profile: says {parsed.profile!r} but the file is for profile {name!r}")
    _check_duplicates(path, parsed.entries)
    return BaselineSet(profile=name, path=path, entries=list(parsed.entries), gated=list(parsed.gated),
                       description=parsed.description)


def _check_duplicates(path: Path, entries: Iterable[BaselineEntry]) -> None:
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for i, entry in enumerate(entries):
        ident = (entry.metric, tuple(sorted(entry.labels.items())))
        if ident in seen:
            raise ConfigError(f"{path}: entries: entry {i} ({entry.key}) duplicates entry {seen[ident]}")
        seen[ident] = i


def load_baselines(directory: Path, profile: str) -> BaselineSet:
    """Load ``<directory>/<profile>.yaml``; a missing file is a ConfigError listing the profiles there are."""
    path = Path(directory) / f"{profile}.yaml"
    if not path.is_file():
        known = ", ".join(available_profiles(Path(directory))) or "none"
        raise ConfigError(f"{path}: no baseline file for profile {profile!r} (profiles with baselines: {known})")
    return load_baseline_file(path, profile)


@dataclass
class RunBaselines:
    """The baselines of a run: each node judged against its own profile's file; lease-wide tests against the
    profile every node shares, and not gated at all when the lease mixes profiles (no common baseline)."""

    node_profiles: dict[str, str]
    sets: dict[str, BaselineSet | None]
    lease_ungated: str | None = None
    """Why this run's lease-wide metrics are not gated at all (a rollout's wave: old and new image in one lease)."""

    def for_node(self, node: str) -> tuple[str | None, BaselineSet | None]:
        profile = self.node_profiles.get(node)
        return profile, self.sets.get(profile) if profile else None

    def for_lease(self) -> tuple[str | None, BaselineSet | None, str | None]:
        """(shared profile, its baselines, None), or (None, None, why not gated) for a mixed lease; (profile,
        baselines, why) when the run gates no lease-wide metric (the metrics are still judged, for information)."""
        profiles = sorted(set(self.node_profiles.values()))
        if len(profiles) == 1:
            return profiles[0], self.sets.get(profiles[0]), self.lease_ungated
        return None, None, f"the lease mixes profiles {', '.join(profiles)}: no shared baseline"


def load_run_baselines(directory: Path, node_profiles: dict[str, str], lease_ungated: str | None = None
                       ) -> RunBaselines:
    """Every profile's baseline file that exists in ``directory`` (a profile without one has None)."""
    sets: dict[str, BaselineSet | None] = {}
    for profile in dict.fromkeys(node_profiles.values()):
        path = Path(directory) / f"{profile}.yaml"
        sets[profile] = load_baseline_file(path, profile) if path.is_file() else None
    return RunBaselines(dict(node_profiles), sets, lease_ungated)
