"""Read a node's coherent-fabric facts in one SSH round trip (the thin edge; parsing is the pure parsers').

One script prints each tool's output framed by marker lines (hilt.fabric.snapshot's pattern): `nvidia-smi c2c -s`,
`nvidia-smi -q -x`, `nvidia-smi topo -m` (for each GPU's NUMA ID), the NUMA layout (`numactl -H`, or the kernel's
sysfs node files where numactl is not installed, as on the RISC-V guests), the node's own addresses and, for a
node of a multi-node domain, `nvidia-imex-ctl -N`. Each fact is parsed on demand, so one unreadable output fails
only the check that needs it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hilt.errors import NodeError, ParseError
from hilt.fabric.c2c import C2cGpu, parse_c2c_status
from hilt.fabric.gpuquery import GpuQuery, parse_nvidia_smi_q
from hilt.fabric.imex import ImexStatus, parse_imex_status
from hilt.fabric.numa import NumaNode, parse_numa, parse_sysfs_numa
from hilt.fabric.snapshot import SECTION_FN, SectionSnapshot, split_sections
from hilt.fabric.topo import parse_topology

if TYPE_CHECKING:
    from hilt.node.protocol import NodeLike

SYSFS_NODES = "/sys/devices/system/node"
_ADDRESS_CHARS = set("0123456789abcdefABCDEF.:")


def fusion_script(imex: bool = False, imex_config: str | None = None) -> str:
    """The bash script: one framed section per tool (the commands a person would type on the node)."""
    lines = [
        SECTION_FN,
        "section c2c nvidia-smi c2c -s",
        "section query nvidia-smi -q -x",
        "section topo nvidia-smi topo -m",
        # numactl reads the same sysfs files; where it is not installed, grep prints them (path:content)
        f"numa() {{ if command -v numactl >/dev/null 2>&1; then numactl -H; else "
        f"grep -H . {SYSFS_NODES}/node*/cpulist; grep -H MemTotal {SYSFS_NODES}/node*/meminfo; fi; }}",
        "section numa numa",
        "addrs() { hostname -I 2>/dev/null || ip -o addr show 2>/dev/null | awk '{print $4}'; }",
        "section addresses addrs",
    ]
    if imex:
        config = f" -c {shlex.quote(imex_config)}" if imex_config else ""
        lines.append(f"section imex nvidia-imex-ctl -N{config}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class FusionSnapshot(SectionSnapshot):
    """The raw outputs of one node (kept for the report's attachments) and their parsed forms, on demand."""

    def c2c(self) -> dict[int, C2cGpu]:
        """`nvidia-smi c2c -s`; ``{}`` where no device supports C2C (the tool then exits 3, which is an answer)."""
        section = self.sections.get("c2c")
        if section is not None and not section.ok:
            try:
                if parse_c2c_status(section.text) == {}:
                    return {}
            except ParseError:
                pass
        return parse_c2c_status(self._need("c2c", "nvidia-smi c2c -s"))

    def gpu_queries(self) -> list[GpuQuery]:
        return parse_nvidia_smi_q(self._need("query", "nvidia-smi -q -x"))

    def gpu_numa_ids(self) -> dict[int, int | None] | None:
        """GPU index -> the NUMA node of its memory (topo -m's GPU NUMA ID); None where the host prints no such
        column or has no nvidia-smi (then the memory nodes are counted instead)."""
        section = self.sections.get("topo")
        if section is None or not section.ok:
            return None
        topo = parse_topology(section.text)
        if "GPU NUMA ID" not in topo.columns:
            return None
        return {int(gpu[3:]): int(value) if value and value.isdigit() else None
                for gpu, value in topo.gpu_numa_id.items()}

    def numa(self) -> list[NumaNode]:
        text = self._need("numa", "numactl -H (or the sysfs node listing)")
        if text.lstrip().startswith(SYSFS_NODES):
            return parse_sysfs_numa(text)
        return parse_numa(text)

    def imex(self) -> ImexStatus:
        return parse_imex_status(self._need("imex", "nvidia-imex-ctl -N"))

    def addresses(self) -> list[str]:
        """The node's own IP addresses (`hostname -I`), without prefix lengths; what IMEX's node list names."""
        out = []
        for token in self.raw("addresses").split():
            address = token.split("/", 1)[0]
            if address and set(address) <= _ADDRESS_CHARS and address not in out:
                out.append(address)
        return out


def read_fusion_snapshot(node: NodeLike, imex: bool = False, imex_config: str | None = None,
                         timeout: float = 120) -> FusionSnapshot:
    """Everything test_c2c, test_coherent_memory and test_nvlink_domain need from one node."""
    result = node.run_script(fusion_script(imex, imex_config), timeout=timeout, check=False)
    sections = split_sections(result.stdout)
    if "c2c" not in sections:
        raise NodeError(f"{node.name}: the coherent-fabric script printed no sections (exit {result.exit_code}): "
                        f"{result.stderr.strip()[:300]}")
    return FusionSnapshot(node.name, sections)
