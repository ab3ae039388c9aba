"""One RISC-V sim server: a ``qemu-system-riscv64 -machine virt`` guest driven by what its BMC does.

Power on boots the image (kernel + initramfs) with the firmware device tree the image's manifest names,
software emulation only (TCG: KVM on this machine class cannot boot these guests); power off kills QEMU by
PID; a reset is an off then an on, so the guest boots again with a fresh boot id. Networking is QEMU user
mode with ``restrict=on``: the guest reaches nothing, and its port 22 is forwarded from 127.0.0.1 only. The
serial console is appended to ``console.log``, with a line per power event, so a failed boot can be read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hilt.sim.riscv.firmware import QEMU, firmware_dtb
from hilt.sim.riscv.image import RiscvImage

log = logging.getLogger("hilt.sim.riscv.machine")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh_banner(port: int, timeout: float = 1.0) -> bool:
    """Whether an SSH server answers on 127.0.0.1:port (slirp accepts the TCP connection even when not)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def qemu_argv(*, kernel: Path, initrd: Path, dtb: Path, console: Path, port: int, hostname: str, smp: int,
              memory_mb: int) -> list[str]:
    """The guest's command line; never ``-enable-kvm``."""
    append = f"console=ttyS0 earlycon=sbi panic=3 loglevel=6 hilt.hostname={hostname}"
    return [QEMU, "-machine", "virt", "-accel", "tcg", "-cpu", "rv64", "-smp", str(smp), "-m", f"{memory_mb}M",
            "-display", "none", "-monitor", "none", "-nodefaults", "-no-reboot", "-bios", "default",
            "-kernel", str(kernel), "-initrd", str(initrd), "-dtb", str(dtb), "-append", append,
            "-chardev", f"file,id=con0,path={console},append=on", "-serial", "chardev:con0",
            "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-net-device,netdev=net0", "-device", "virtio-rng-device"]


class QemuMachine:
    """The interface the sim daemon drives (power_on/power_off/status/shutdown), backed by QEMU."""

    def __init__(self, *, name: str, node_dir: Path, cache_dir: Path, record_pid: Callable[[int, bool], None],
                 smp: int = 1, memory_mb: int = 256, boot_wait_s: float = 600.0, serial: str | None = None):
        self.name = name
        self.serial = serial  # the board's device-tree serial-number: what its BMC reports as SerialNumber
        self.node_dir = node_dir
        self.cache_dir = cache_dir
        self.record_pid = record_pid
        self.smp, self.memory_mb = smp, memory_mb
        self.boot_wait_s = boot_wait_s
        self.port = free_port()
        self.console = node_dir / "console.log"
        self.power = "Off"
        self.up = False
        self.booting = False
        self.boots = 0
        self.image: RiscvImage | None = None
        self.last_image: RiscvImage | None = None
        self.image_dirs: dict[str, Path] = {}  # sha256 -> unpacked kernel/initramfs/manifest
        self.faults: dict[str, dict[str, Any]] = {}
        self.events: list[str] = []
        self.power_on_at: float | None = None
        self.ready_s: float | None = None
        self._qemu: subprocess.Popen | None = None
        self._generation = 0
        self._lock = threading.RLock()
        node_dir.mkdir(parents=True, exist_ok=True)

    def event(self, text: str) -> None:
        line = f"[hilt {time.strftime('%H:%M:%S')}] {self.name}: {text}"
        log.info(line)
        with self._lock:
            self.events.append(line)
            del self.events[:-50]
        with contextlib.suppress(OSError), self.console.open("a") as fh:
            fh.write(line + "\n")

    # ------------------------------------------------------------------ power
    def power_off(self, reset: bool = False) -> None:
        with self._lock:
            self._generation += 1
            self.power = "Off"
            self.booting = False
            self.event("reset: guest stopped" if reset else "power off")
            self._halt()

    def power_on(self, image: RiscvImage | None, source: str) -> None:
        with self._lock:
            self._generation += 1
            gen = self._generation
            self.power = "On"
            target = image or self.last_image
            if target is None or target.sha256 not in self.image_dirs:
                self.event("power on: no bootable media and no installed image; the node stays down")
                return
            self.booting = True
            self.power_on_at = time.monotonic()
            self.ready_s = None
            self.event(f"power on: booting {target.name} ({source})")
            try:
                self._start_qemu(target)
            except Exception as exc:  # a driver bug shows as a node that did not boot, with why
                self.booting = False
                self.event(f"boot failed: {exc}")
                return
        threading.Thread(target=self._wait_ready, args=(gen,), daemon=True, name=f"ready-{self.name}").start()

    def _start_qemu(self, image: RiscvImage) -> None:
        self._halt()
        self.boots += 1
        src = self.image_dirs[image.sha256]
        tree = image.manifest.get("devicetree") or {}
        dtb = firmware_dtb(self.cache_dir, self.node_dir / f"firmware-{self.boots}.dtb", list(tree.get("nvlink") or []),
                           smp=self.smp, memory_mb=self.memory_mb, serial=self.serial,
                           gpu_memory_mb=[int(mb) for mb in tree.get("gpu_memory_mb") or []])
        argv = qemu_argv(kernel=src / "Image", initrd=src / "initramfs.cpio.gz", dtb=dtb, console=self.console,
                         port=self.port, hostname=self.name, smp=self.smp, memory_mb=self.memory_mb)
        (self.node_dir / "qemu.argv").write_text(" ".join(argv) + "\n")
        with (self.node_dir / "qemu.log").open("ab") as out:
            self._qemu = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        self.record_pid(self._qemu.pid, True)
        self.image = self.last_image = image
        for old in self.node_dir.glob("firmware-*"):
            if not old.name.startswith(f"firmware-{self.boots}."):
                old.unlink(missing_ok=True)

    def _wait_ready(self, gen: int) -> None:
        deadline = time.monotonic() + self.boot_wait_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._generation != gen or self._qemu is None:
                    return
                if self._qemu.poll() is not None:
                    self.booting = False
                    self.event(f"guest stopped by itself (qemu exit {self._qemu.returncode}): see the console above")
                    self.record_pid(self._qemu.pid, False)
                    self._qemu = None
                    return
            if ssh_banner(self.port):
                with self._lock:
                    if self._generation == gen:
                        self.up, self.booting = True, False
                        self.ready_s = time.monotonic() - (self.power_on_at or time.monotonic())
                        self.event(f"up: SSH answers on 127.0.0.1:{self.port} {self.ready_s:.1f}s after power on")
                return
            time.sleep(0.5)
        self.event(f"SSH did not answer within {self.boot_wait_s:.0f}s")

    def _halt(self) -> None:
        self.up = False
        self.image = None
        proc, self._qemu = self._qemu, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        self.record_pid(proc.pid, False)

    # ------------------------------------------------------------------ the daemon's view
    def drop_ssh_sessions(self) -> int:
        return 0

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "power": self.power, "up": self.up, "booting": self.booting, "boots": self.boots,
                "image": self.image.name if self.image else None,
                "image_id": self.image.manifest["image_id"] if self.image else None,
                "last_image": self.last_image.name if self.last_image else None,
                "ssh_port": self.port, "console": str(self.console), "ready_s": self.ready_s,
                "qemu_pid": self._qemu.pid if self._qemu else None, "events": list(self.events[-10:]),
            }

    def shutdown(self) -> None:
        with self._lock:
            self._generation += 1
            self.power = "Off"
            self._halt()
