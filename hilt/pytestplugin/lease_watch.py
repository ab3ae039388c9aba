"""A lost lease stops the running test at once, in whichever process runs it.

The controller's lease keeper writes the session's lease-lost file within a renewal of losing the lease; every
test already checks it before it starts (rig.py's ``_lease_guard``). A probe that runs for minutes would go on
measuring nodes that may be someone else's by now, and its result would be judged: so in each process that runs
rig tests a watcher thread polls the file and, while a test is in its setup or call, interrupts the main thread
with a signal whose handler raises ``LeaseLost`` there. The test errors with the lease's reason (an
infrastructure error), its result is never recorded, and the later tests error in setup as before.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from hilt.errors import LeaseLost

SIGNAL = signal.SIGUSR1
POLL_S = 0.2
_WATCH = pytest.StashKey["LeaseWatch"]()


class LeaseWatch:
    """One per test-running process: watches ``lost_file`` and stops the test in progress when it appears."""

    def __init__(self, lost_file: Path, poll_s: float = POLL_S):
        self.lost_file = Path(lost_file)
        self.poll_s = poll_s
        self.in_test = False  # the main thread is in a test's setup or call: a LeaseLost there errors the test
        self.fired = False
        self._stop = threading.Event()
        self._previous: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Install the handler (main thread only) and start the watcher; False where that cannot be done."""
        if threading.current_thread() is not threading.main_thread():
            return False
        try:
            self._previous = signal.signal(SIGNAL, self._interrupt)
        except ValueError:
            return False
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._watch, name="hilt-lease-watch", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._previous is not None:
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(SIGNAL, self._previous)

    def reason(self) -> str:
        try:
            return self.lost_file.read_text().strip() or "lease lost"
        except OSError:
            return "lease lost"

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            if self.lost_file.exists():
                if self.in_test and not self.fired:
                    signal.pthread_kill(self._main, SIGNAL)
                if self.fired:
                    return

    def _interrupt(self, signum: int, frame: Any) -> None:  # noqa: ARG002 - signal's handler signature
        if not self.in_test or self.fired:
            return  # between tests: the next one's lease guard errors it in setup
        self.fired = True
        reason = self.reason()
        reason = reason if reason.startswith("lease lost") else f"lease lost: {reason}"
        raise LeaseLost(f"{reason}; the running test was stopped: its nodes are no longer ours")


def watch_lease(config: pytest.Config, lost_file: str | None) -> None:
    """Start this process's watcher once (called by the lease guard before the first rig test)."""
    if not lost_file or _WATCH in config.stash:
        return
    watch = LeaseWatch(Path(lost_file))
    if watch.start():
        config.stash[_WATCH] = watch


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):  # noqa: ANN201 - pluggy's wrapper protocol
    with _in_test(item.config):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item):  # noqa: ANN201
    with _in_test(item.config):
        return (yield)


@contextlib.contextmanager
def _in_test(config: pytest.Config):  # noqa: ANN202
    watch = config.stash.get(_WATCH, None)
    if watch is None:
        yield
        return
    watch.in_test = True
    try:
        yield
    finally:
        watch.in_test = False


def pytest_unconfigure(config: pytest.Config) -> None:
    watch = config.stash.get(_WATCH, None)
    if watch is not None:
        watch.stop()
        del config.stash[_WATCH]
