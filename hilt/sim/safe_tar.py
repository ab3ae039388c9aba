"""Extract a tar archive's members only inside the destination, on every Python hilt supports.

tarfile's ``filter="data"`` arrived in Python 3.11.4; Debian 12 ships 3.11.2, where passing it raises
TypeError (every simulated node failed to boot there). So the members are checked here, the same rules as
the data filter (no absolute or escaping paths, links that stay inside, regular files, directories and links
only, no setuid/setgid/sticky or group/other write bits, no owners), and the filter is added where it exists.
"""

from __future__ import annotations

import copy
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from hilt.errors import ConfigError


class UnsafeMember(ConfigError):
    """A tar member that would land outside the destination, or is not a plain file, directory or link."""


def extract_inside(tar: tarfile.TarFile, dest: Path, members: Iterable[tarfile.TarInfo]) -> None:
    """Extract ``members`` of ``tar`` into ``dest``; UnsafeMember (naming the archive and member) otherwise."""
    dest = Path(dest).resolve()
    checked = [_checked(tar, dest, member) for member in members]
    extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    tar.extractall(dest, members=checked, **extra)


def _checked(tar: tarfile.TarFile, dest: Path, member: tarfile.TarInfo) -> tarfile.TarInfo:
    def refuse(why: str) -> UnsafeMember:
        return UnsafeMember(f"{tar.name}: member {member.name!r}: {why}")

    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise refuse("not a regular file, directory or link")
    if os.path.isabs(member.name):
        raise refuse("absolute path")
    target = (dest / member.name).resolve()
    if not _inside(target, dest):
        raise refuse("path outside the destination")
    if member.issym():
        if os.path.isabs(member.linkname):
            raise refuse(f"symlink to an absolute path {member.linkname!r}")
        if not _inside((target.parent / member.linkname).resolve(), dest):
            raise refuse(f"symlink {member.linkname!r} points outside the destination")
    if member.islnk() and not _inside((dest / member.linkname).resolve(), dest):
        raise refuse(f"hard link {member.linkname!r} points outside the destination")
    safe = copy.copy(member)  # TarInfo.replace() is 3.11.4+ as well
    safe.uid, safe.gid, safe.uname, safe.gname = 0, 0, "", ""
    if member.isfile() or member.isdir():
        safe.mode = member.mode & 0o755
    return safe


def _inside(path: Path, dest: Path) -> bool:
    return path == dest or dest in path.parents
