"""Build what a RISC-V sim node boots, from registry packages only, cached between runs.

- the kernel: Debian's ``linux-source-6.1`` cross-compiled with ``gcc-riscv64-linux-gnu`` from tinyconfig plus
  ``kernel.config`` (kept next to this file); cached under ``<cache>/kernel-<hash>/Image``, the hash covering
  the fragment, the source package version and the compiler version, so a rerun reuses it;
- the userland: Debian 13 (trixie) riscv64 ``busybox-static``, ``dropbear-bin`` and its libraries, fetched with
  a private apt configuration (its own sources list, lists, cache and status; the system's Debian keyring), so
  the machine's own apt setup is untouched; ``apt-get download`` + ``dpkg-deb -x`` into ``<cache>/userland-<hash>``.

``python -m hilt.sim.riscv.build`` (or scripts/build_riscv.sh) builds both and prints their paths.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hilt.errors import HiltError

HERE = Path(__file__).resolve().parent
KERNEL_FRAGMENT = HERE / "kernel.config"
SOURCE_PACKAGE = "linux-source-6.1"
SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
CROSS = "riscv64-linux-gnu-"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
SUITE = "trixie"
USERLAND_PACKAGES = ("busybox-static", "dropbear-bin", "libc6", "libcrypt1", "libtomcrypt1", "libtommath1",
                     "libgmp10", "zlib1g", "libgcc-s1")
#: Options the guest cannot do without; a fragment that loses one fails the build with its name.
REQUIRED_OPTIONS = ("64BIT", "NUMA", "SERIAL_8250_CONSOLE", "SERIAL_OF_PLATFORM", "BLK_DEV_INITRD", "RD_GZIP",
                    "VIRTIO_NET", "VIRTIO_MMIO", "PROC_FS", "SYSFS", "DEVTMPFS", "OF", "UNIX", "INET", "UNIX98_PTYS",
                    "PRINTK")


class BuildError(HiltError):
    """A RISC-V kernel or userland build step failed; the message names the step and the fix."""


def default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("HILT_RISCV_CACHE", base / "hilt" / "riscv"))


def _run(argv: list[str], step: str, log: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise BuildError(f"{step} failed (exit {proc.returncode}); log {log}:\n{tail}")


def _need_tools(tools: dict[str, str]) -> None:
    missing = sorted({pkg for tool, pkg in tools.items() if not shutil.which(tool)})
    if missing:
        raise BuildError(f"missing build tools: apt-get install -y {' '.join(missing)}")


def _package_version(package: str) -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


def kernel_key() -> str:
    gcc = subprocess.run([f"{CROSS}gcc", "-dumpfullversion"], capture_output=True, text=True, check=False).stdout
    text = KERNEL_FRAGMENT.read_bytes() + _package_version(SOURCE_PACKAGE).encode() + gcc.strip().encode()
    return hashlib.sha256(text).hexdigest()[:16]


def build_kernel(cache_dir: Path | None = None, jobs: int | None = None) -> Path:
    """The guest kernel ``Image`` (cached); builds it (about 2-4 minutes on 2 cores) when absent."""
    _need_tools({f"{CROSS}gcc": "gcc-riscv64-linux-gnu", "make": "make", "bc": "bc", "flex": "flex",
                 "bison": "bison"})
    if not SOURCE_TARBALL.exists():
        raise BuildError(f"{SOURCE_TARBALL} missing: apt-get install -y {SOURCE_PACKAGE}")
    cache = Path(cache_dir or default_cache_dir())
    out = cache / f"kernel-{kernel_key()}"
    image = out / "Image"
    if image.exists():
        return image
    out.mkdir(parents=True, exist_ok=True)
    log = out / "build.log"
    src = cache / "src" / _package_version(SOURCE_PACKAGE)
    if not (src / "linux-source-6.1" / "Makefile").exists():
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        _run(["tar", "-C", str(src), "-xf", str(SOURCE_TARBALL)], "unpacking the kernel source", log)
    tree = src / "linux-source-6.1"
    obj = out / "obj"
    env = {**os.environ, "ARCH": "riscv", "CROSS_COMPILE": CROSS}
    make = ["make", f"O={obj}", f"-j{jobs or (os.cpu_count() or 2) + 1}"]
    _run([*make, "tinyconfig"], "make tinyconfig", log, cwd=tree, env=env)
    _run(["scripts/kconfig/merge_config.sh", "-m", "-O", str(obj), str(obj / ".config"), str(KERNEL_FRAGMENT)],
         "merging kernel.config", log, cwd=tree, env=env)
    _run([*make, "olddefconfig"], "make olddefconfig", log, cwd=tree, env=env)
    config = (obj / ".config").read_text()
    lost = [o for o in REQUIRED_OPTIONS if f"CONFIG_{o}=y\n" not in config]
    if lost:
        raise BuildError(f"{KERNEL_FRAGMENT}: options not set after olddefconfig (a dependency is missing): "
                         + ", ".join(f"CONFIG_{o}" for o in lost))
    _run([*make, "Image"], "kernel build", log, cwd=tree, env=env)
    shutil.copy2(obj / ".config", out / "config")
    tmp = out / "Image.tmp"
    shutil.copy2(obj / "arch" / "riscv" / "boot" / "Image", tmp)
    tmp.replace(image)  # the cache entry exists only once complete
    shutil.rmtree(obj, ignore_errors=True)
    return image


def kernel_release(image: Path) -> str:
    """``uname -r`` of a built kernel, from its cached config (``6.1.x-hilt-riscv``)."""
    version = (image.parent / "kernel.release").read_text().strip() if (image.parent / "kernel.release").exists() \
        else None
    if version:
        return version
    data = image.read_bytes()
    marker = data.find(b"Linux version ")
    if marker < 0:
        raise BuildError(f"{image}: no 'Linux version' string in the kernel image")
    version = data[marker + len(b"Linux version "):].split(b" ", 1)[0].decode()
    (image.parent / "kernel.release").write_text(version + "\n")
    return version


def _apt_config(root: Path) -> Path:
    for d in ("lists/partial", "archives/partial", "cache", "etc/sources.list.d", "etc/preferences.d",
              "etc/apt.conf.d", "dl"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "status").touch()
    (root / "etc" / "sources.list").write_text(
        f"deb [arch=riscv64 signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {SUITE} main\n")
    conf = root / "apt.conf"
    conf.write_text("\n".join([
        'APT::Architecture "riscv64";', 'APT::Architectures { "riscv64"; };', 'APT::Sandbox::User "root";',
        'Acquire::Languages "none";',
        f'Dir::Etc::SourceList "{root}/etc/sources.list";', f'Dir::Etc::SourceParts "{root}/etc/sources.list.d";',
        f'Dir::Etc::Preferences "{root}/etc/preferences";',
        f'Dir::Etc::PreferencesParts "{root}/etc/preferences.d";', f'Dir::Etc::Parts "{root}/etc/apt.conf.d";',
        f'Dir::State "{root}";', f'Dir::State::Lists "{root}/lists";', f'Dir::State::status "{root}/status";',
        f'Dir::Cache "{root}/cache";', f'Dir::Cache::Archives "{root}/archives";', ""]))
    return conf


def build_userland(cache_dir: Path | None = None) -> Path:
    """A directory holding riscv64 busybox, dropbear and their libraries, unpacked from Debian trixie debs."""
    _need_tools({"apt-get": "apt", "dpkg-deb": "dpkg"})
    if not DEBIAN_KEYRING.exists():
        raise BuildError(f"{DEBIAN_KEYRING} missing: apt-get install -y debian-archive-keyring")
    cache = Path(cache_dir or default_cache_dir())
    key = hashlib.sha256(f"{SUITE} {' '.join(USERLAND_PACKAGES)}".encode()).hexdigest()[:16]
    out = cache / f"userland-{key}"
    if (out / ".complete").exists():
        return out / "root"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    log = out / "build.log"
    apt = cache / "apt"
    env = {**os.environ, "APT_CONFIG": str(_apt_config(apt)), "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update"], f"apt-get update (private riscv64 {SUITE} config {apt})", log, env=env)
    dl = out / "debs"
    dl.mkdir()
    _run(["apt-get", "download", *USERLAND_PACKAGES], "apt-get download", log, cwd=dl, env=env)
    root = out / "root"
    for deb in sorted(dl.glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(root)], f"dpkg-deb -x {deb.name}", log)
    (out / "packages.txt").write_text("\n".join(sorted(d.name for d in dl.glob("*.deb"))) + "\n")
    shutil.rmtree(dl, ignore_errors=True)
    (out / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
    return root


def stamp(path: Path) -> str:
    """A short content hash (for naming cache entries that depend on a built file)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hilt.sim.riscv.build", description=__doc__.splitlines()[0])
    p.add_argument("--cache-dir", type=Path, default=None)
    args = p.parse_args(argv)
    started = time.monotonic()
    kernel = build_kernel(args.cache_dir)
    print(f"kernel   {kernel} ({kernel_release(kernel)}) {time.monotonic() - started:.0f}s", flush=True)
    userland = build_userland(args.cache_dir)
    print(f"userland {userland} {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
