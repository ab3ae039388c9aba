"""The "init" of a sim node: mount the booted image over the host's paths, then become the node's sshd.

Run as ``ip netns exec NS unshare --mount --uts --propagation private -- python -m hilt.sim.nodeinit ...``:
the mounts live only in this node's private mount namespace, so every SSH session of the node sees the
image's /etc/os-release, boot id, kernel release, /proc/driver, /sys/module, /sys/firmware, /sys/class/nvlink,
/sys/devices/system/node (a Grace node's NUMA nodes), /usr/local/bin, /opt, the kernel's taint and lockdown
state and the GPUs' /dev/nvidia* while the host and the other nodes see their own. ``exec`` keeps the process id,
so the daemon's PID for this process is the sshd listener's PID.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pwd
import socket
import subprocess
import sys
from pathlib import Path

MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def mount(source: str, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    rc = _libc.mount(
        source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target} ({fstype or 'bind'}): {os.strerror(err)}")


def bind(source: Path, target: str) -> None:
    mount(str(source), target, None, MS_BIND)


def merge(lower: Path, target: str) -> None:
    """The image's directory on top of the host's (read-only overlay): host tools stay usable."""
    mount("overlay", target, "overlay", MS_RDONLY, f"lowerdir={lower}:{target}")


def mount_sys_class_extra(root: Path, stage: Path) -> None:
    """Add the image's /sys/class/<x> entries (e.g. nvlink) next to the real ones.

    sysfs refuses mkdir, so /sys/class becomes a tmpfs that re-binds each real class directory from a
    staging bind. The real entries are relative symlinks into ../../devices, which still resolve.
    """
    extra = root / "sys/class"
    if not extra.is_dir() or not any(extra.iterdir()):
        return
    stage.mkdir(parents=True, exist_ok=True)
    bind(Path("/sys/class"), str(stage))
    mount("tmpfs", "/sys/class", "tmpfs", 0, "mode=0755,size=1m")
    for entry in sorted(os.listdir(stage)):
        os.mkdir(f"/sys/class/{entry}")
        bind(stage / entry, f"/sys/class/{entry}")
    for entry in sorted(os.listdir(extra)):
        if not os.path.exists(f"/sys/class/{entry}"):
            os.mkdir(f"/sys/class/{entry}")
        bind(extra / entry, f"/sys/class/{entry}")


def mount_etc_files(run_dir: Path, names: tuple[str, ...], etc: str = "/etc") -> None:
    """The node's own ``etc/<name>`` files (hosts, resolv.conf) over the host's.

    A bind needs a file to mount on, and a host may lack one (a debootstrap root or a container image has no
    /etc/hosts); creating it would change the host. Files the host has are bound; the missing ones come from a
    writable overlay of /etc, in this node's private mount namespace, whose top layer holds them and takes the
    node's writes, so the host's /etc is never written."""
    present = [n for n in names if (run_dir / n).exists() and os.path.exists(f"{etc}/{n}")]
    missing = [n for n in names if (run_dir / n).exists() and not os.path.exists(f"{etc}/{n}")]
    if missing:
        top = run_dir / "etc-overlay"
        (top / "upper").mkdir(parents=True, exist_ok=True)
        (top / "work").mkdir(exist_ok=True)
        for name in missing:
            (top / "upper" / name).write_bytes((run_dir / name).read_bytes())
        mount("overlay", etc, "overlay", 0, f"lowerdir={etc},upperdir={top / 'upper'},workdir={top / 'work'}")
    for name in present:
        bind(run_dir / name, f"{etc}/{name}")


def _submounts(under: str) -> list[str]:
    """The topmost mount points below ``under`` (e.g. pts, shm below /dev), relative to it."""
    points = set()
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].encode().decode("unicode_escape")  # mountinfo escapes spaces as \040
            if point.startswith(under + "/"):
                points.add(point[len(under) + 1:])
    return sorted(p for p in points if not any(p.startswith(q + "/") for q in points))


def mount_dev_extra(root: Path, stage: Path) -> None:
    """Add the image's /dev entries (the GPUs' /dev/nvidia*) next to the host's devices.

    /dev is shared with the host, so the image's entries come in through a read-only overlay (the host's
    device nodes still open: an overlay passes special files through); the mounts below /dev (pts, shm),
    which an overlay does not carry, are bound back from a staging bind of the host's /dev.
    """
    extra = root / "dev"
    if not extra.is_dir() or not any(extra.iterdir()):
        return
    subs = _submounts("/dev")
    stage.mkdir(parents=True, exist_ok=True)
    mount("/dev", str(stage), None, MS_BIND | MS_REC)
    merge(extra, "/dev")
    for rel in subs:
        mount(str(stage / rel), f"/dev/{rel}", None, MS_BIND | MS_REC)


def mount_kernel_state(root: Path) -> None:
    """The booted kernel's trust state the image declares: its taint mask and its securityfs (lockdown).

    /proc/sys/kernel/tainted is one file bound over the host's; /sys/kernel/security a directory bound over
    the host's mount point (skipped where the host kernel has no securityfs directory to mount on).
    """
    if (root / "proc/sys/kernel/tainted").is_file():
        bind(root / "proc/sys/kernel/tainted", "/proc/sys/kernel/tainted")
    if (root / "sys/kernel/security").is_dir() and os.path.isdir("/sys/kernel/security"):
        bind(root / "sys/kernel/security", "/sys/kernel/security")


SHELL_STARTUP_FILES = (".bashrc", ".profile", ".bash_profile", ".bash_login", ".zshrc", ".zshenv")


def mount_home(run_dir: Path, home: str | None = None) -> None:
    """The node's root user does not run the host's shell start-up files (a real node's are its image's).

    With the host's, every SSH command into every node ran the host's root shell profile (bash reads ~/.bashrc
    under sshd): on a developer machine that is e.g. `pyenv init`, about a hundred processes and 150 ms of CPU per
    command, which made the simulated rack slower the more nodes it had. Only those files are covered with empty
    ones: the rest of the host's home stays visible, since the checkout whose Python the nodes run may live there
    (a CI clone in /root/project)."""
    home = home or pwd.getpwuid(0).pw_dir
    empty = run_dir / "empty-shell-startup"
    for name in SHELL_STARTUP_FILES:
        path = os.path.join(home, name)
        if os.path.isfile(path):
            if not empty.exists():
                empty.write_text("")
                empty.chmod(0o444)
            bind(empty, path)


def mount_node_disk(node_dir: Path, etc_files: tuple[str, ...]) -> None:
    """The node's own disk for /etc and /var/lib: writable overlays over the host's, whose upper layers live in the
    node's directory and so outlive a reboot, as a real node's disk does (NFD's feature files in
    /etc/kubernetes, the kubelet's sockets in /var/lib/kubelet: hilt.sim.k8s_view). The host is never written.
    ``etc_files`` the node binds its own copies over (mount_etc_files) are made here where the host lacks them."""
    for target in ("/etc", "/var/lib"):
        disk = node_dir / "disk" / target.strip("/").replace("/", "-")
        (disk / "upper").mkdir(parents=True, exist_ok=True)
        (disk / "work").mkdir(exist_ok=True)
        mount("overlay", target, "overlay", 0, f"lowerdir={target},upperdir={disk / 'upper'},workdir={disk / 'work'}")
    for name in etc_files:
        if not os.path.exists(f"/etc/{name}"):
            Path(f"/etc/{name}").touch()


def start_node_services(root: Path, run_dir: Path) -> None:
    """The image's node services, before sshd and in the node's namespaces (a power off kills them with it):
    the device plugin, pod-resources and GFD of hilt.sim.device_plugin_server, where the image ships their view."""
    spec = root / "opt/hilt-sim/k8s/kubelet.json"
    if spec.is_file():
        with (run_dir / "k8s-services.log").open("ab") as log:
            subprocess.Popen([sys.executable, "-m", "hilt.sim.device_plugin_server", "--view",
                              "/opt/hilt-sim/k8s/kubelet.json"], stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)


def mount_image(root: Path, run_dir: Path) -> None:
    """Every mount that makes the host look like the booted image."""
    mount_node_disk(run_dir.parent, ("hosts", "resolv.conf"))  # first: overlays over /etc and /var/lib
    mount_etc_files(run_dir, ("hosts", "resolv.conf"))  # it may put an overlay over /etc (not where the disk has them)
    mount_home(run_dir)
    bind(root / "etc/os-release", "/etc/os-release")
    bind(run_dir / "boot_id", "/proc/sys/kernel/random/boot_id")
    bind(run_dir / "osrelease", "/proc/sys/kernel/osrelease")
    for rel in ("proc/driver", "sys/firmware", "sys/module"):
        if (root / rel).is_dir():
            bind(root / rel, f"/{rel}")
    # a Grace node's NUMA nodes (hilt.sim.fusion_view); a host kernel without NUMA has no directory to mount on
    if (root / "sys/devices/system/node").is_dir() and os.path.isdir("/sys/devices/system/node"):
        bind(root / "sys/devices/system/node", "/sys/devices/system/node")
    mount_sys_class_extra(root, run_dir / "sysclass-stage")
    mount_kernel_state(root)
    mount_dev_extra(root, run_dir / "dev-stage")
    for rel in ("usr/local/bin", "opt"):
        if (root / rel).is_dir():
            merge(root / rel, f"/{rel}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hilt.sim.nodeinit")
    parser.add_argument("--root", required=True, type=Path, help="the unpacked image overlay")
    parser.add_argument("--run-dir", required=True, type=Path, help="boot_id, osrelease, sshd_config")
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--sshd", default="/usr/sbin/sshd")
    args = parser.parse_args(argv)
    socket.sethostname(args.hostname)
    mount_image(args.root, args.run_dir)
    start_node_services(args.root, args.run_dir)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    sys.stdout.flush()
    os.execv(args.sshd, [args.sshd, "-D", "-e", "-f", str(args.run_dir / "sshd_config")])


if __name__ == "__main__":
    main()
