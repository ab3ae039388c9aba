"""Parsers of the NVIDIA driver's /proc files: `gpus/<bus>/information` and `version`.

`information` lines are `Key:` then tabs and/or spaces then the value; key names changed across drivers
(`Blacklisted` became `GPU Excluded`; `GPU Firmware` appeared with GSP firmware), so both are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9 ]{0,80}")
_VERSION = re.compile(r"Kernel Module(?: for \S{1,80})?\s{1,80}(\d{1,9}\.\d{1,9}(?:\.\d{1,9})?)\s")


def _first_line(text: str) -> str:
    lines = text.splitlines()
    return lines[0][:200] if lines else ""


@dataclass(frozen=True)
class GpuInformation:
    model: str
    uuid: str | None
    bus_location: str | None
    vbios: str | None
    irq: int | None
    device_minor: int | None
    firmware: str | None
    excluded: bool | None
    fields: dict[str, str] = field(default_factory=dict)


def parse_gpu_information(text: str) -> GpuInformation:
    """Parse one `/proc/driver/nvidia/gpus/<bus>/information` file."""
    check_size(text, "GPU information")
    fields: dict[str, str] = {}
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > 4096:
            raise ParseError("a GPU information line over 4096 characters", no, line[:200])
        # string operations, not a regex with two lazy groups (quadratic on long runs of blanks)
        key, colon, value = line.partition(":")
        key = key.rstrip()
        if not colon or not _KEY.fullmatch(key):
            raise ParseError("expected 'Key: value' in GPU information", no, line[:200])
        fields[key] = value.strip()
    if "Model" not in fields:
        raise ParseError("GPU information without a 'Model:' line", 1, _first_line(text))

    def number(key: str) -> int | None:
        value = fields.get(key)
        return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 9 else None

    excluded_text = fields.get("GPU Excluded", fields.get("Blacklisted"))
    excluded = None if excluded_text is None else excluded_text.strip().lower() == "yes"
    return GpuInformation(
        model=fields["Model"],
        uuid=fields.get("GPU UUID"),
        bus_location=fields.get("Bus Location"),
        vbios=fields.get("Video BIOS"),
        irq=number("IRQ"),
        device_minor=number("Device Minor"),
        firmware=fields.get("GPU Firmware"),
        excluded=excluded,
        fields=fields,
    )


def parse_driver_version(text: str) -> str:
    """The kernel module version from /proc/driver/nvidia/version (or bare /sys/module/nvidia/version)."""
    check_size(text, "driver version")
    stripped = text.strip()
    if re.fullmatch(r"\d{1,9}\.\d{1,9}(?:\.\d{1,9})?", stripped):
        return stripped
    for no, line in enumerate(text.splitlines(), start=1):
        if line.startswith("NVRM version:"):
            m = _VERSION.search(line + " ")
            if not m:
                raise ParseError("NVRM version line without a version number", no, line[:200])
            return m.group(1)
    raise ParseError("no 'NVRM version:' line in driver version text", 1, _first_line(text))
