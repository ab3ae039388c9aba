"""Time from BMC power-on (virtual media boot) to SSH ready per RISC-V guest, 1 guest alone vs 2 in parallel.

Usage: .venv/bin/python bench/riscv_boot.py [--repeats 3]   (needs root; the kernel build is cached)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hilt.bmc import Bmc  # noqa: E402
from hilt.rig.config import NodeConfig  # noqa: E402
from hilt.sim.riscv.machine import ssh_banner  # noqa: E402
from hilt.sim.riscv.provider import riscv_down, riscv_up  # noqa: E402


def boot_one(cfg: NodeConfig, image_url: str) -> float:
    """Seconds from the power-on request to an SSH banner on the guest's forwarded port."""
    with Bmc(cfg.bmc.url, "hilt", cfg.bmc.password.resolve(), system_id=cfg.bmc.system_id,
             verify=cfg.bmc.verify) as bmc:
        if bmc.power_state() == "On":
            bmc.power_off()
            while ssh_banner(cfg.ssh.port, 0.5):
                time.sleep(0.2)
        started = time.monotonic()
        bmc.boot_from_virtual_media(image_url)
        while not ssh_banner(cfg.ssh.port, 0.5):
            if time.monotonic() - started > 300:
                raise RuntimeError(f"no SSH on port {cfg.ssh.port} after 300 s")
            time.sleep(0.1)
        return time.monotonic() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hilt-riscv-bench-") as tmp:
        rig = riscv_up("riscv-bench", nodes=2, images=["good"], state_dir=Path(tmp) / "sim")
        print(f"rig up (kernel/userland cached, images composed) in {time.monotonic() - started:.1f} s")
        try:
            cfgs = [NodeConfig.model_validate(n) for n in rig["nodes"].values()]
            url = rig["images"]["good"]["url"]
            for parallel in (1, 2):
                times: list[list[float]] = [[] for _ in range(parallel)]
                for _ in range(args.repeats):
                    with ThreadPoolExecutor(parallel) as pool:
                        for i, t in enumerate(pool.map(lambda c: boot_one(c, url), cfgs[:parallel])):
                            times[i].append(t)
                for i, ts in enumerate(times):
                    print(f"{parallel} guest(s) in parallel: node{i + 1} power-on -> SSH ready "
                          f"median {statistics.median(ts):.2f} s (min {min(ts):.2f}, max {max(ts):.2f}, "
                          f"n={len(ts)})")
        finally:
            riscv_down("riscv-bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())
