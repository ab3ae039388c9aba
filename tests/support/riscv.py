"""A session against a fresh sim-riscv rig: real RISC-V kernels under QEMU behind sushy-emulator BMCs."""

from __future__ import annotations

from pathlib import Path

from tests.support.sessions import ROOT, Session, run_suites

RISCV_RIGS = """\
default_rig: sim-riscv
lease_store: sqlite://leases.sqlite
history: history.sqlite
baselines_dir: {baselines}
health: {{bad_after: 3}}
rigs:
  sim-riscv:
    default_image: good
    provider:
      factory: "hilt.sim.riscv.provider:RiscvSimProvider"
      options: {{nodes: {nodes}, boot_timeout_s: {boot_timeout_s}}}
"""


def run_session(tmp_path: Path, *args: str, nodes: int = 2, boot_timeout_s: float = 60,
                suites: tuple[str, ...] = ("suites/test_boot.py", "suites/test_devicetree.py")) -> Session:
    """A hilt session in a subprocess against a fresh sim-riscv rig (what `hilt run --rig sim-riscv` runs)."""
    rigs = tmp_path / "rigs.yaml"
    rigs.write_text(RISCV_RIGS.format(baselines=ROOT / "baselines", nodes=nodes, boot_timeout_s=boot_timeout_s))
    return run_suites(rigs, *args, suites=" ".join(suites), timeout=600)
