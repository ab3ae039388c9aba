"""The node's firmware device tree: QEMU ``virt``'s own DTB plus the NVLink Fusion nodes under /firmware.

QEMU dumps the device tree it would generate (``-machine virt,dumpdtb=``) for the same CPU count and memory;
``dtc`` decompiles it, the ``/firmware/nvlink-N`` nodes the image's firmware exposes are appended as a second
root-node block (dtc merges them), and ``dtc`` compiles the result that QEMU is then given with ``-dtb``.

The GPU memory a Fusion host exposes to the OS as coherent memory is a CPU-less NUMA node per GPU (a Grace
host's `numactl -H` shows the HBM as nodes without CPUs). QEMU's riscv ``virt`` machine refuses a CPU-less
``-numa`` node ("discontinuous hartids in socket1", QEMU 7.2), so the firmware tree does it the way the
device-tree NUMA binding allows: the guest's RAM is split into one memory node for the CPUs and one per GPU,
each with its ``numa-node-id``, the CPUs on node 0, and a ``numa-distance-map-v1`` with Grace's distances
(10 local, 80 CPU to GPU memory, 255 between GPU memories; tests/data/corpus/c2c_mnnvl). The guest kernel
(``CONFIG_NUMA``) then shows them under /sys/devices/system/node.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import subprocess
from pathlib import Path

from hilt.sim.riscv.build import BuildError

QEMU = "qemu-system-riscv64"
COMPATIBLE = "nvidia,nvlink-fusion"
RAM_BASE = 0x8000_0000  # where QEMU virt's RAM starts
#: What the CPUs' node keeps at least (OpenSBI, the kernel, the initramfs and its unpacked copy live there).
MIN_CPU_NODE_MB = 96


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"{name} not found: apt-get install -y {package}")
    return path


def base_dts(cache_dir: Path, smp: int, memory_mb: int) -> str:
    """QEMU virt's own device tree for this CPU count and memory, as dts text (cached per QEMU version)."""
    qemu = _tool(QEMU, "qemu-system-misc")
    dtc = _tool("dtc", "device-tree-compiler")
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    key = hashlib.sha256(f"{version} {smp} {memory_mb}".encode()).hexdigest()[:16]
    cached = cache_dir / f"virt-{key}.dts"
    if cached.exists():
        return cached.read_text()
    cache_dir.mkdir(parents=True, exist_ok=True)
    dtb = cache_dir / f"virt-{key}.dtb"
    dump = subprocess.run([qemu, "-machine", f"virt,dumpdtb={dtb}", "-smp", str(smp), "-m", f"{memory_mb}M",
                           "-display", "none", "-nodefaults"], capture_output=True, text=True, timeout=60,
                          check=False)
    if dump.returncode != 0 or not dtb.exists():
        raise BuildError(f"{QEMU} -machine virt,dumpdtb failed: {dump.stderr.strip()[-500:]}")
    dts = subprocess.run([dtc, "-q", "-I", "dtb", "-O", "dts", str(dtb)], capture_output=True, text=True,
                         timeout=60, check=False)
    if dts.returncode != 0:
        raise BuildError(f"dtc could not decompile {dtb}: {dts.stderr.strip()[-500:]}")
    cached.write_text(dts.stdout)
    return dts.stdout


def nvlink_fragment(nodes: list[str], serial: str | None = None) -> str:
    """The /firmware block: one node per NVLink the firmware exposes (link id and peer GPU as cells); with
    ``serial``, the root's ``serial-number`` (the board's identity, matched against its BMC at provisioning)."""
    if serial is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", serial):
        raise BuildError(f"serial-number {serial!r}: expected letters, digits, '.', '_', '-' (at most 64)")
    lines = ["/ {"] + ([f'\tserial-number = "{serial}";'] if serial else []) + ["\tfirmware {"]
    for name in nodes:
        match = re.fullmatch(r"nvlink-(\d+)", name)
        if match is None:
            raise BuildError(f"device-tree node {name!r}: expected a name like nvlink-0")
        link = int(match.group(1))
        lines += [f"\t\t{name} {{", f'\t\t\tcompatible = "{COMPATIBLE}";', f"\t\t\tnvidia,link = <{link}>;",
                  f"\t\t\tnvidia,peer-gpu = <{link}>;", '\t\t\tstatus = "okay";', "\t\t};"]
    lines += ["\t};", "};", ""]
    return "\n".join(lines)


def _cells(value: int) -> str:
    return f"0x{value >> 32:02x} 0x{value & 0xFFFF_FFFF:08x}"


def numa_fragment(gpu_memory_mb: list[int], *, smp: int, memory_mb: int) -> str:
    """The memory split into NUMA nodes: node 0 (every CPU) keeps the start of RAM, then one CPU-less node per
    GPU memory (``gpu_memory_mb``, in order); empty list: no NUMA information (one node, as without Fusion)."""
    if not gpu_memory_mb:
        return ""
    if any(mb <= 0 for mb in gpu_memory_mb) or memory_mb - sum(gpu_memory_mb) < MIN_CPU_NODE_MB:
        raise BuildError(f"GPU memory nodes {gpu_memory_mb} MiB do not fit in {memory_mb} MiB of guest RAM "
                         f"(each must be positive and the CPUs' node keeps at least {MIN_CPU_NODE_MB} MiB)")
    mib = 1 << 20
    cpu_bytes = (memory_mb - sum(gpu_memory_mb)) * mib
    lines = ["/ {", f"\tmemory@{RAM_BASE:x} {{", f"\t\treg = <{_cells(RAM_BASE)} {_cells(cpu_bytes)}>;",
             "\t\tnuma-node-id = <0>;", "\t};"]
    start = RAM_BASE + cpu_bytes
    for node, mb in enumerate(gpu_memory_mb, start=1):
        lines += [f"\tmemory@{start:x} {{", '\t\tdevice_type = "memory";',
                  f"\t\treg = <{_cells(start)} {_cells(mb * mib)}>;", f"\t\tnuma-node-id = <{node}>;", "\t};"]
        start += mb * mib
    lines += ["\tcpus {"] + [f"\t\tcpu@{c:x} {{ numa-node-id = <0>; }};" for c in range(smp)] + ["\t};"]
    count = len(gpu_memory_mb) + 1
    entries = [f"<{a} {b} {10 if a == b else 80 if 0 in (a, b) else 255}>"
               for a in range(count) for b in range(a, count)]
    lines += ["\tdistance-map {", '\t\tcompatible = "numa-distance-map-v1";',
              f"\t\tdistance-matrix = {', '.join(entries)};", "\t};", "};", ""]
    return "\n".join(lines)


def firmware_dtb(cache_dir: Path, out: Path, nvlink: list[str], *, smp: int = 1, memory_mb: int = 256,
                 serial: str | None = None, gpu_memory_mb: list[int] | None = None) -> Path:
    """Compile QEMU virt's tree plus ``nvlink`` nodes (and the board's ``serial``, and a CPU-less NUMA node per
    ``gpu_memory_mb`` entry) into ``out`` (for ``-dtb``)."""
    dtc = _tool("dtc", "device-tree-compiler")
    # the dumped tree carries the rng-seed QEMU drew for the dump; firmware draws a fresh one every boot
    seed = " ".join(f"0x{secrets.randbits(32):08x}" for _ in range(8))
    base = re.sub(r"rng-seed = <[^>]*>;", f"rng-seed = <{seed}>;", base_dts(cache_dir, smp, memory_mb))
    source = (base + "\n" + nvlink_fragment(nvlink, serial)
              + numa_fragment(list(gpu_memory_mb or []), smp=smp, memory_mb=memory_mb))
    dts_path = out.with_suffix(".dts")
    dts_path.write_text(source)
    done = subprocess.run([dtc, "-q", "-I", "dts", "-O", "dtb", "-o", str(out), str(dts_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise BuildError(f"dtc could not compile {dts_path}: {done.stderr.strip()[-500:]}")
    return out
