"""The NVML collector's JSON (hilt/fabric/scripts/collect_nvml.py), read into typed values."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size


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
    inforom: str | None = None
    """The InfoROM image version (nvmlDeviceGetInforomImageVersion, e.g. G520.0200.00.05); None: not supported."""
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
    check_size(text, "NVML collector output")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        line = lines[exc.lineno - 1][:200] if 0 < exc.lineno <= len(lines) else ""
        raise ParseError(f"NVML collector output is not JSON: {exc.msg}", exc.lineno, line) from None
    except RecursionError:
        raise ParseError("NVML collector output: JSON nested too deeply") from None
    except ValueError as exc:  # an integer over 4,300 digits
        raise ParseError(f"NVML collector output: {str(exc)[:120]}") from None
    try:
        return NvmlReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        first_line = text.splitlines()[0][:200] if text.splitlines() else ""
        raise ParseError(f"NVML collector JSON: {where[:200]}: {first['msg'][:200]}", 1, first_line) from None
