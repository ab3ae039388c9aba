"""A real small filesystem for a test's output faults: a tmpfs mounted on a directory of the test and unmounted
after (root only: ``needs_root``). A full disk and a read-only filesystem are what a CI runner's volume does to a
run; a chmod'ed directory is not the same fault (root writes through it)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def mounted_tmpfs(directory: Path, *, size: str, nr_inodes: int | None = None,
                  read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (``"16m"``, ``"256k"``) on ``directory`` (made if missing), read-only if asked;
    unmount it (lazily: a process of the test may still hold a file there) however the test ends."""
    directory.mkdir(parents=True, exist_ok=True)
    options = [f"size={size}"]
    if nr_inodes is not None:
        options.append(f"nr_inodes={nr_inodes}")
    if read_only:
        options.insert(0, "ro")
    subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)
