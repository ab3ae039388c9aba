"""Parser of `nvidia-smi c2c -s`: the NVLink-C2C links between a GPU and its CPU (Grace Hopper, Grace Blackwell).

The layout is `nvlink -s`'s with ``C2C Link N`` rows: a ``GPU N: name (UUID: ...)`` line, then one indented row
per link with its speed in GB/s. A host whose GPUs have no C2C prints the single line "No Devices support C2C."
(and exits 3): that is an answer, ``{}``, not an error, because "this GPU has no C2C" is what a check of an
x86 + H100/H200 node must be able to say. Anything else that is not this tool's output raises ParseError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hilt.errors import ParseError
from hilt.fabric.bounds import check_size, to_float
from hilt.fabric.nvlink import ELISION_TOKENS, MAX_LINE, gpu_heading

NO_C2C = "No Devices support C2C."
# nvlink -s prints `<inactive>` for a link that is down; the C2C rows share its code path in nvidia-smi
_LINK = re.compile(r"^\s+C2C Link (\d{1,4}): (?:(<inactive>|[Ii]nactive|N/A)|(\S{1,60}) GB/s)\s*$")


@dataclass(frozen=True)
class C2cGpu:
    """One GPU's C2C links: link index -> GB/s as printed, None for an inactive link."""

    name: str
    uuid: str | None
    links: dict[int, float | None]

    @property
    def active(self) -> list[int]:
        return [i for i, speed in sorted(self.links.items()) if speed is not None]


def parse_c2c_status(text: str) -> dict[int, C2cGpu]:
    """GPU index -> its C2C links; ``{}`` for "No Devices support C2C."."""
    check_size(text, "nvidia-smi c2c -s output")
    gpus: dict[int, C2cGpu] = {}
    current: C2cGpu | None = None
    saw_no_c2c = False
    for no, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE:
            raise ParseError(f"a line of {len(line)} characters is not `nvidia-smi c2c -s` output "
                             f"(its lines are under {MAX_LINE})", no, line[:200])
        stripped = line.strip()
        if not stripped or stripped in ELISION_TOKENS:
            continue
        if stripped == NO_C2C:
            if gpus:
                raise ParseError(f"{NO_C2C!r} after GPU blocks: not one `nvidia-smi c2c -s` output", no, line)
            saw_no_c2c = True
            continue
        head = gpu_heading(line)
        if head is not None:
            if saw_no_c2c:
                raise ParseError(f"a GPU block after {NO_C2C!r}: not one `nvidia-smi c2c -s` output", no, line)
            index, name, uuid = head
            if index in gpus:
                raise ParseError(f"GPU {index} is listed twice", no, line)
            current = gpus[index] = C2cGpu(name, uuid, {})
            continue
        m = _LINK.match(line)
        if m is None or current is None:
            what = "expected 'C2C Link N: <speed> GB/s'" if current is not None else "expected a 'GPU N: ...' line"
            raise ParseError(f"not `nvidia-smi c2c -s` output: {what}", no, line)
        link = int(m.group(1))
        if link in current.links:
            raise ParseError(f"C2C link {link} is listed twice for one GPU", no, line)
        current.links[link] = None if m.group(2) else to_float(m.group(3), "C2C link speed", no, line)
    if not gpus and not saw_no_c2c:
        raise ParseError(f"empty `nvidia-smi c2c -s` output: no GPU lines and no {NO_C2C!r}", 1, "")
    return gpus
