"""The NVML collector's JSON (hilt/fabric/scripts/collect_nvml.py), read into typed values."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hilt.errors import ParseError


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class NvmlLink(_Model):
    index: int
    active: bool
    remote_pci_bus_id: str | None = None
    errors: dict[str, int | None] = Field(default_factory=dict)
    """replay, recovery, crc_flit, crc_data (None where NVML does not support the counter)."""


class EccCounts(_Model):
    corrected: int | None = None
    uncorrected: int | None = None


class NvmlEcc(_Model):
    volatile: EccCounts = EccCounts()
    aggregate: EccCounts = EccCounts()


class RowRemap(_Model):
    corrected_rows: int = 0
    uncorrectable_rows: int = 0
    pending: bool = False
    failure: bool = False


class NvmlGpu(_Model):
    index: int
    name: str
    uuid: str
    pci_bus_id: str
    driver: str | None = None
    vbios: str | None = None
    nvlinks: list[NvmlLink] = Field(default_factory=list)
    ecc: NvmlEcc | None = None
    row_remap: RowRemap | None = None


class NvmlReport(_Model):
    driver: str | None = None
    nvml_version: str | None = None
    gpus: list[NvmlGpu] = Field(default_factory=list)
    error: str | None = None


def parse_nvml_report(text: str) -> NvmlReport:
    """Parse the collector's single JSON document; ParseError when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        line = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        raise ParseError(f"NVML collector output is not JSON: {exc.msg}", exc.lineno, line) from None
    try:
        return NvmlReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ParseError(f"NVML collector JSON: {where}: {first['msg']}", 1, text.splitlines()[0][:200]) from None
