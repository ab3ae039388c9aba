"""Write a file whole or not at all: a report that a reader (CI, a person, `hilt history import`) finds is complete.

The text goes to a hidden temporary file beside the target, is flushed to the disk (a full disk shows up there,
not later), and replaces the target with one rename. When any step fails the temporary file is removed, and so is
a target left from an earlier run: a reports directory that is reused must not offer the last run's summary as
this one's. The error names the file and what the system said, in one line.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from hilt.errors import HiltError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class OutputError(HiltError):
    """A report or record file could not be written; ``disk_full`` for ENOSPC/EDQUOT."""

    def __init__(self, path: Path | str, cause: OSError):
        self.path = str(path)
        self.cause = cause
        self.disk_full = cause.errno in DISK_FULL
        self.reason = cause.strerror or str(cause)
        code = errno.errorcode.get(cause.errno or 0)
        super().__init__(f"{path}: not written: {self.reason}" + (f" ({code})" if code else ""))


def write_atomic(path: Path | str, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` by write-then-rename; raise OutputError (the target then does not exist)."""
    path = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        for leftover in (tmp, path):
            try:
                leftover.unlink(missing_ok=True)
            except OSError:
                pass
        raise OutputError(path, exc) from exc
    return path


def is_disk_full(exc: BaseException | None, _depth: int = 0) -> OSError | None:
    """The ENOSPC/EDQUOT OSError in ``exc``, its causes or (an exception group's) members, if there is one."""
    seen = 0
    while exc is not None and seen < 10 and _depth < 5:
        if isinstance(exc, OutputError):
            return exc.cause if exc.disk_full else None
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            return exc
        for member in getattr(exc, "exceptions", ()) or ():
            found = is_disk_full(member, _depth + 1)
            if found is not None:
                return found
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
