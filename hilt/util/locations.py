"""Where hilt keeps what must outlive a clean-up (state) and what must not outlive its process (runtime).

``reports/`` is what `make clean` and CI clean-up steps delete and what CI uploads as an artifact: it holds
outputs only. The lease store lives in a state directory, because deleting it while a lease is held would let a
second holder in; so does the run history by default, because its worth is the runs it accumulates (it used to be
reports/history.sqlite, which every `make clean` deleted; a file there is still read, with a message); a
simulated rack's keys and passwords live in a runtime directory, private to the user and
removed when the rack stops, because an uploaded artifact must never carry a credential.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def state_dir(env: Mapping[str, str] | None = None, uid: int | None = None) -> Path:
    """``$XDG_STATE_HOME/hilt``; else ``/var/lib/hilt`` for root and ``~/.local/state/hilt`` for others."""
    env = os.environ if env is None else env
    uid = os.getuid() if uid is None else uid
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative value is invalid and ignored
        return Path(xdg) / "hilt"
    if uid == 0:
        return Path("/var/lib/hilt")
    return Path(env.get("HOME") or Path.home()) / ".local" / "state" / "hilt"


def default_lease_store_url(env: Mapping[str, str] | None = None, uid: int | None = None) -> str:
    """The sqlite lease store in the state directory, as a store URL (``sqlite:///abs/path``)."""
    return f"sqlite://{state_dir(env, uid) / 'leases.sqlite'}"


LEGACY_HISTORY = Path("reports") / "history.sqlite"  # the default before the state directory


def default_history_path(env: Mapping[str, str] | None = None, uid: int | None = None) -> Path:
    """The run history's default file: ``<state_dir>/history.sqlite``, beside the lease store."""
    return state_dir(env, uid) / "history.sqlite"


def default_history(base: Path, env: Mapping[str, str] | None = None) -> tuple[Path, str | None]:
    """The default history for a rigs file in ``base``, and a message when it is the old location.

    The state directory's file; but where only ``base/reports/history.sqlite`` exists (written by an older hilt),
    that one, so that no history seems to vanish, with a message saying where to move it."""
    new = default_history_path(env)
    old = (Path(base) / LEGACY_HISTORY).resolve()
    if not new.exists() and old.is_file():
        return old, (f"history: reading {old}, the old default location, which `make clean` deletes: move it to "
                     f"{new} (the default now), or name it in rigs.yaml (history: ...)")
    return new, None


def runtime_dir(env: Mapping[str, str] | None = None, uid: int | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/hilt``; else ``/run/hilt`` for root; else ``$TMPDIR/hilt-<uid>``.

    Created with mode 0700 (the directories a rack makes under it hold private keys and passwords).
    """
    env = os.environ if env is None else env
    uid = os.getuid() if uid is None else uid
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg and Path(xdg).is_absolute():
        base = Path(xdg) / "hilt"
    elif uid == 0 and Path("/run").is_dir() and os.access("/run", os.W_OK):
        base = Path("/run/hilt")
    else:
        base = Path(tempfile.gettempdir()) / f"hilt-{uid}"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    if base.stat().st_uid != os.getuid():
        raise PermissionError(f"runtime directory {base} belongs to another user; set XDG_RUNTIME_DIR")
    base.chmod(0o700)
    return base
