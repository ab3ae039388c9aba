"""One simulated server: its power, its booted image, its sshd, and the faults set on it.

The daemon tells a machine what its BMC did (power on/off/reset, with or without virtual media); the machine
does what a server would: a power off kills everything running on it (SSH refuses), a power on boots the
inserted image (or the last one) after the boot delay with a fresh boot id. Each boot bumps a generation
number, so a boot timer that a newer power transition overtook does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hilt.sim import netns
from hilt.sim.fusion_view import write_platform
from hilt.sim.identity import write_dmi
from hilt.sim.image import Image, unpack_root
from hilt.sim.trust_view import apply_device_mode

log = logging.getLogger("hilt.sim.machine")

#: Faults that stay until cleared; the others fire once.
PERSISTENT_FAULTS = {"bmc_unreachable", "slow_boot", "never_boot"}
ONE_SHOT_FAULTS = {"ssh_drop", "old_os_lingers", "host_key_changed"}
FAULTS = PERSISTENT_FAULTS | ONE_SHOT_FAULTS

SSHD_CONFIG = """# hilt sim node {name}: generated per boot
Port 22
ListenAddress {address}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {run_dir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
MaxStartups 200
MaxSessions 64
ClientAliveInterval 15
Subsystem sftp internal-sftp
SetEnv PYTHONPATH=/opt/hilt-sim/python HILT_SIM_NODE={name}
"""


def generate_ssh_key(path: Path, comment: str) -> str:
    """A fresh ed25519 key at ``path``; returns the public key as ``ssh-ed25519 AAAA...`` (no comment)."""
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    path.chmod(0o600)
    kind, blob = path.with_name(path.name + ".pub").read_text().split()[:2]
    return f"{kind} {blob}"


class Machine:
    """A sim node: network namespace, host key, power state, booted image, faults."""

    def __init__(self, *, sim: str, name: str, index: int, subnet: int, node_dir: Path, authorized_keys: Path,
                 boot_delay_s: float, sshd: str, record_pid: Callable[[int, bool], None], profile: str | None = None,
                 tray_index: int = 0, domain: list[str] | None = None):
        self.sim, self.name, self.index, self.subnet = sim, name, index, subnet
        self.profile = profile  # the hardware: which view of an image this node shows (None: the image's own)
        # its place in the rack: chassis tray index and the addresses of its NVLink domain (the trays of its profile)
        self.tray_index = tray_index
        self.domain = list(domain or [])
        self.node_dir = node_dir
        self.authorized_keys = authorized_keys
        self.boot_delay_s = boot_delay_s
        self.sshd_path = sshd
        self.record_pid = record_pid
        self.ns = netns.namespace_name(sim, name)
        self.address = netns.node_address(subnet, index)
        self.host_key_path = node_dir / "ssh_host_ed25519_key"
        self.host_key = ""
        self.power = "Off"
        self.image: Image | None = None  # what is running now
        self.last_image: Image | None = None  # what a power on without media boots
        self.boot_id: str | None = None
        self.system_uuid: str | None = None  # the UUID of this node's sushy System: its SMBIOS identity
        self.up = False
        self.booting = False
        self.boots = 0
        self.faults: dict[str, dict[str, Any]] = {}
        self.events: list[str] = []
        self._sshd: subprocess.Popen | None = None
        self._generation = 0
        self._linger_until = 0.0
        self._lingering = False
        self._lock = threading.RLock()
        node_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ setup
    def create(self) -> None:
        self.host_key = generate_ssh_key(self.host_key_path, f"root@{self.name}")

    def event(self, text: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {self.name}: {text}"
        log.info(line)
        with self._lock:
            self.events.append(line)
            del self.events[:-50]
        with contextlib.suppress(OSError), (self.node_dir / "console.log").open("a") as fh:
            fh.write(line + "\n")

    # ------------------------------------------------------------------ power
    def power_off(self, reset: bool = False) -> None:
        """Power went off (or a reset began): everything on the node stops, unless the old OS lingers."""
        with self._lock:
            self._generation += 1
            self.power = "Off"
            self.booting = False
            linger = self.faults.pop("old_os_lingers", None)
            if linger is not None and self.up:
                seconds = float(linger.get("seconds", 10))
                self._linger_until = time.monotonic() + seconds
                self.event(f"power off: old OS keeps answering SSH for {seconds:.1f}s (fault old_os_lingers)")
                self._lingering = True
                threading.Timer(seconds, self._end_linger).start()
                return
            self.event("power off")
            self._halt()

    def _end_linger(self) -> None:
        with self._lock:
            self._linger_until = 0.0
            if self._lingering:
                self.event("old OS finally went down")
                self._halt()

    def power_on(self, image: Image | None, source: str) -> None:
        """Power came on: boot ``image`` (from virtual media) or the last booted image after the boot delay."""
        with self._lock:
            self._generation += 1
            gen = self._generation
            self.power = "On"
            target = image or self.last_image
            if target is None:
                self.event("power on: no bootable media and no installed image; the node stays down")
                return
            delay = self.boot_delay_s + float(target.manifest.get("boot_delay_s") or 0)
            if "slow_boot" in self.faults:
                delay += float(self.faults["slow_boot"].get("seconds", 30))
            self.booting = True
            self.event(f"power on: booting {target.name} ({source}) in {delay:.1f}s")
        threading.Thread(target=self._boot, args=(gen, target, delay), daemon=True,
                         name=f"boot-{self.name}").start()

    def _boot(self, gen: int, image: Image, delay: float) -> None:
        deadline = time.monotonic() + delay
        while True:
            with self._lock:
                if self._generation != gen:
                    return
                if self._linger_until:
                    # a real node boots only once its old OS is gone: down for the whole boot delay after it
                    deadline = max(deadline, self._linger_until + delay)
                wait = deadline - time.monotonic()
            if wait <= 0:
                break
            time.sleep(min(wait, 0.1))
        with self._lock:
            if self._generation != gen:
                return
            self._halt()  # the old OS (a lingering one included) is gone by now
            self.last_image = image
            if "never_boot" in self.faults or image.manifest.get("boot") in ("never", "panic"):
                self.booting = False
                why = "fault never_boot" if "never_boot" in self.faults else f"image boot={image.manifest['boot']}"
                if image.manifest.get("boot") == "panic":
                    self.event("Kernel panic - not syncing: VFS: Unable to mount root fs (image boot=panic)")
                else:
                    self.event(f"boot hangs before userspace ({why}); SSH never comes up")
                return
            if self.faults.pop("host_key_changed", None) is not None:
                self.host_key = generate_ssh_key(self.host_key_path, f"root@{self.name}")
                self.event("new host key generated (fault host_key_changed)")
            try:
                self._start_os(image)
            except Exception as exc:  # a sim bug must show up as a node that did not boot, with why
                self.booting = False
                self.event(f"boot failed: {exc}")
                return
        self._wait_sshd(gen)

    def _start_os(self, image: Image) -> None:
        self.boots += 1
        run_dir = self.node_dir / f"boot-{self.boots}"
        root = unpack_root(image, run_dir / "root", self.profile)
        self.boot_id = str(uuid.uuid4())
        (run_dir / "boot_id").write_text(self.boot_id + "\n")
        (run_dir / "osrelease").write_text(image.manifest["kernel"] + "\n")
        if self.system_uuid:
            write_dmi(root, self.system_uuid, f"SIM-{self.name}")
        apply_device_mode(root, image.manifest)
        write_platform(root, self.tray_index, self.domain or [self.address])
        # a node resolves its own name without DNS (the host's resolver is not reachable from the namespace)
        (run_dir / "hosts").write_text(f"127.0.0.1 localhost\n{self.address} {self.name}\n")
        (run_dir / "resolv.conf").write_text("# no DNS on a simulated node\noptions timeout:1 attempts:1\n")
        (run_dir / "sshd_config").write_text(SSHD_CONFIG.format(
            name=self.name, address=self.address, host_key=self.host_key_path, run_dir=run_dir,
            authorized_keys=self.authorized_keys))
        netns.set_link_rate(self.ns, float(image.manifest["link_rate_mbit"]))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        argv = ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--uts", "--propagation", "private", "--",
                sys.executable, "-m", "hilt.sim.nodeinit", "--root", str(root), "--run-dir", str(run_dir),
                "--hostname", self.name, "--sshd", self.sshd_path]
        with (self.node_dir / "sshd.log").open("ab") as out:
            self._sshd = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=env, start_new_session=True)
        self.record_pid(self._sshd.pid, True)
        self.image = image
        self._previous_dirs = [d for d in self.node_dir.glob("boot-*") if d != run_dir]

    def _wait_sshd(self, gen: int) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with self._lock:
                if self._generation != gen or self._sshd is None:
                    return
                if self._sshd.poll() is not None:
                    self.booting = False
                    self.event(f"sshd exited with {self._sshd.returncode} during boot (see sshd.log)")
                    return
            with contextlib.suppress(OSError), socket.create_connection((self.address, 22), timeout=0.5):
                with self._lock:
                    if self._generation == gen:
                        self.up, self.booting = True, False
                        self.event(f"up: image {self.image.name if self.image else '?'}, boot id {self.boot_id}")
                        for old in getattr(self, "_previous_dirs", []):
                            shutil.rmtree(old, ignore_errors=True)
                return
            time.sleep(0.05)
        self.event("sshd did not listen within 15s")

    def _halt(self) -> None:
        """Kill every process of the node (by PID, inside its namespace): SSH refuses from now on."""
        self.up = False
        self._lingering = False
        self.image = None
        if self._sshd is not None:
            self.record_pid(self._sshd.pid, False)
        for pid in netns.namespace_pids(self.ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._sshd is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._sshd.wait(5)
            self._sshd = None

    # ------------------------------------------------------------------ faults
    def drop_ssh_sessions(self) -> int:
        """Kill the node's established SSH sessions (children of the sshd listener) once; sshd keeps listening."""
        with self._lock:
            if self._sshd is None:
                return 0
            listener = self._sshd.pid
        victims = [pid for pid in netns.namespace_pids(self.ns) if pid != listener and _ppid(pid) == listener]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.event(f"dropped {len(victims)} SSH session(s) (fault ssh_drop)")
        return len(victims)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "power": self.power, "up": self.up, "booting": self.booting, "boot_id": self.boot_id,
                "image": self.image.name if self.image else None,
                "image_id": self.image.manifest["image_id"] if self.image else None,
                "last_image": self.last_image.name if self.last_image else None,
                "address": self.address, "namespace": self.ns, "boots": self.boots,
                "sshd_pid": self._sshd.pid if self._sshd else None,
                "faults": dict(self.faults), "events": list(self.events[-10:]),
            }

    def shutdown(self) -> None:
        with self._lock:
            self._generation += 1
            self.power = "Off"
            self._halt()


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
