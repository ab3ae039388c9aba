"""Image archives extract inside their destination on Debian 12's Python 3.11.2 too (no tarfile filter= there)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from hilt.sim.safe_tar import UnsafeMember, extract_inside


def _tar(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _file(name: str, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, b"content\n"


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def test_plain_members_extract_without_special_bits(tmp_path):
    archive = _tar(tmp_path / "a.tar", _file("etc/os-release"), _file("usr/bin/tool", 0o4777),
                   _link("usr/bin/alias", "tool"))
    with tarfile.open(archive) as tar:
        extract_inside(tar, tmp_path / "out", tar.getmembers())
    assert (tmp_path / "out/etc/os-release").read_text() == "content\n"
    assert (tmp_path / "out/usr/bin/tool").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "out/usr/bin/alias").resolve() == (tmp_path / "out/usr/bin/tool").resolve()


@pytest.mark.parametrize("member, why", [
    (_file("../escape"), "path outside the destination"),
    (_file("/etc/evil"), "absolute path"),
    (_link("etc/passwd", "/etc/passwd"), "symlink to an absolute path"),
    (_link("etc/up", "../../outside"), "points outside the destination"),
    (_link("etc/hard", "../outside", tarfile.LNKTYPE), "hard link"),
], ids=["dotdot", "absolute", "abs-symlink", "escaping-symlink", "escaping-hardlink"])
def test_escaping_members_are_refused_naming_archive_and_member(tmp_path, member, why):
    archive = _tar(tmp_path / "bad.tar", member)
    with tarfile.open(archive) as tar, pytest.raises(UnsafeMember) as err:
        extract_inside(tar, tmp_path / "out", tar.getmembers())
    assert "bad.tar" in str(err.value) and repr(member[0].name) in str(err.value) and why in str(err.value)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "outside").exists()


def test_device_files_are_refused(tmp_path):
    info = tarfile.TarInfo("dev/sda")
    info.type = tarfile.BLKTYPE
    archive = _tar(tmp_path / "dev.tar", (info, b""))
    with tarfile.open(archive) as tar, pytest.raises(UnsafeMember, match="not a regular file"):
        extract_inside(tar, tmp_path / "out", tar.getmembers())
