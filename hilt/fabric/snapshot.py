"""Reading the fabric from a node: the one I/O edge of hilt.fabric, kept thin.

One bash script gathers every raw text in a single SSH round trip, framed by marker lines; the pure parsers
then read the texts. A snapshot keeps the raw texts so suites can attach them to the report, and parses on
demand so that one unparseable output fails only the suite that needs it.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hilt.errors import NodeError, ParseError
from hilt.fabric.compare import check_error_delta
from hilt.fabric.devicetree import DeviceTree, parse_devicetree
from hilt.fabric.nvlink import GpuErrors, GpuLinks, parse_nvlink_errors, parse_nvlink_status
from hilt.fabric.nvml import NvmlReport, parse_nvml_report
from hilt.fabric.procinfo import GpuInformation, parse_driver_version, parse_gpu_information
from hilt.fabric.topo import Topology, parse_topology
from hilt.fabric.xid import XidEvent, parse_xids

if TYPE_CHECKING:  # a type only: the node protocol's package is a layer above this one (docs/architecture.md)
    from hilt.node.protocol import NodeLike

__all__ = ["FabricSnapshot", "Section", "check_error_delta", "read_fabric_snapshot", "read_nvlink_errors"]

COLLECTOR = Path(__file__).resolve().parent / "scripts" / "collect_nvml.py"
DT_BASE = "/sys/firmware/devicetree/base"
_MARK = "@@HILT@@"
_FRAME = re.compile(rf"^{_MARK} (BEGIN|END) (\S{{1,200}})(?: rc=(\d{{1,9}}))?$")


#: The bash function every node script starts with: ``section NAME CMD...`` runs CMD and frames its output
#: (stderr when it printed nothing) and exit code between markers that :func:`split_sections` reads back.
#: The fusion and trust readers (fusionread, trustread) frame their sections with it too.
SECTION_FN = f"""\
section() {{ name=$1; shift; err=$(mktemp); out=$("$@" 2>"$err"); rc=$?
  [ $rc -ne 0 ] && [ -z "$out" ] && out=$(cat "$err"); rm -f "$err"
  printf '{_MARK} BEGIN %s\\n%s\\n{_MARK} END %s rc=%s\\n' "$name" "$out" "$name" "$rc"; }}
"""

_SNAPSHOT_BODY = f"""\
section topo nvidia-smi topo -m
section nvlink_status nvidia-smi nvlink -s
section nvlink_errors nvidia-smi nvlink -e
section driver_version cat /proc/driver/nvidia/version
for f in /proc/driver/nvidia/gpus/*/information; do
  [ -r "$f" ] && section "info:$(basename "$(dirname "$f")")" cat "$f"
done
dt_dump() {{ cd {DT_BASE} 2>/dev/null || return 0; [ -d firmware ] || return 0
  find firmware -type f | sort | while read -r p; do printf '%s\\t%s\\n' "$p" "$(base64 -w0 < "$p")"; done; }}
section devicetree dt_dump
klog() {{ dmesg 2>/dev/null || journalctl -k -b --no-pager; }}
section kernel_log klog
"""


@dataclass(frozen=True)
class Section:
    """One command's raw output and exit status, as the node printed it."""

    text: str
    rc: int

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass(frozen=True)
class SectionSnapshot:
    """One node's tool outputs, read in one round trip: the raw text of each section and the one way a reader
    asks for a section it needs (a section that failed or is missing is the node's error, naming the tool)."""

    node: str
    sections: dict[str, Section] = field(default_factory=dict)

    def raw(self, name: str) -> str:
        section = self.sections.get(name)
        return section.text if section else ""

    def _need(self, name: str, what: str) -> str:
        section = self.sections.get(name)
        if section is None or not section.ok:
            detail = section.text.strip()[:300] if section else "not collected"
            raise NodeError(f"{self.node}: {what} failed (rc={section.rc if section else '?'}): {detail}")
        return section.text


@dataclass(frozen=True)
class FabricSnapshot(SectionSnapshot):
    """The GPU fabric's outputs (topo -m, nvlink, device tree, NVML, ...) and their parsed forms, on demand."""

    def topology(self) -> Topology:
        return parse_topology(self._need("topo", "nvidia-smi topo -m"))

    def nvlink_status(self) -> list[GpuLinks]:
        return parse_nvlink_status(self._need("nvlink_status", "nvidia-smi nvlink -s"))

    def nvlink_errors(self) -> list[GpuErrors]:
        return parse_nvlink_errors(self._need("nvlink_errors", "nvidia-smi nvlink -e"))

    def driver_version(self) -> str | None:
        section = self.sections.get("driver_version")
        return parse_driver_version(section.text) if section and section.ok else None

    def gpu_information(self) -> list[GpuInformation]:
        names = sorted(n for n in self.sections if n.startswith("info:"))
        return [parse_gpu_information(self.sections[n].text) for n in names if self.sections[n].ok]

    def devicetree(self) -> DeviceTree | None:
        """None when the node has no device tree (x86) or no /firmware node in it."""
        text = self.raw("devicetree")
        if not text.strip():
            return None
        files = {}
        for no, line in enumerate(text.splitlines(), start=1):
            path, _, data = line.partition("\t")
            try:
                files[path] = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise ParseError("device-tree dump: the value is not base64", no, line[:200]) from None
        return parse_devicetree(files)

    def kernel_log(self) -> str:
        return self.raw("kernel_log")

    def xids(self) -> list[XidEvent]:
        return parse_xids(self.kernel_log())

    def nvml(self) -> NvmlReport:
        section = self.sections.get("nvml")
        if section is None:
            raise NodeError(f"{self.node}: NVML collector did not run")
        try:
            return parse_nvml_report(section.text)
        except Exception:
            if section.ok:
                raise
            raise NodeError(f"{self.node}: NVML collector failed (rc={section.rc}): {section.text[:300]}") from None


def split_sections(stdout: str) -> dict[str, Section]:
    """Cut the script's framed output into sections (pure; tested without a node)."""
    sections: dict[str, Section] = {}
    current: str | None = None
    body: list[str] = []
    for line in stdout.splitlines():
        m = _FRAME.match(line)
        if m and m.group(1) == "BEGIN" and current is None:
            current, body = m.group(2), []
        elif m and m.group(1) == "END" and m.group(2) == current:
            rc = int(m.group(3)) if m.group(3) is not None else -1  # an END without rc= was not our script's
            sections[current] = Section("\n".join(body) + ("\n" if body and body != [""] else ""), rc)
            current = None
        elif current is not None:
            body.append(line)
    return sections


def snapshot_script(python: str = "python3") -> str:
    """The bash script that prints every section, the NVML collector last (run with the node's python)."""
    collector = COLLECTOR.read_text()
    nvml = f"nvml_run() {{ {shlex.quote(python)} - <<'HILT_NVML_EOF'\n{collector}\nHILT_NVML_EOF\n}}\n"
    return SECTION_FN + _SNAPSHOT_BODY + nvml + "section nvml nvml_run\n"


def read_fabric_snapshot(node: NodeLike, timeout: float = 120) -> FabricSnapshot:
    """Everything the fabric suites need from one node, in one SSH round trip."""
    result = node.run_script(snapshot_script(getattr(node, "python", "python3")), timeout=timeout, check=False)
    sections = split_sections(result.stdout)
    if "topo" not in sections:
        raise NodeError(f"{node.name}: fabric snapshot script printed no sections (exit {result.exit_code})")
    return FabricSnapshot(node.name, sections)


def read_nvlink_errors(node: NodeLike, timeout: float = 60) -> list[GpuErrors]:
    """`nvidia-smi nvlink -e` parsed: read before and after the probes, compared with check_error_delta."""
    result = node.run(["nvidia-smi", "nvlink", "-e"], timeout=timeout, check=False)
    if result.exit_code != 0:
        raise NodeError(f"{node.name}: nvidia-smi nvlink -e failed (exit {result.exit_code}): {result.stderr[:300]}")
    return parse_nvlink_errors(result.stdout)
