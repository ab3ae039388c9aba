"""SIGINT and SIGTERM caught for one stretch of a command that holds (or waits for) nodes.

Python's default for SIGTERM (a CI job's timeout) is to die at once: no ``finally`` runs, so a lease stays held
until its TTL and a place in the wait queue until its ticket expires. Within ``StopSignals`` either signal is
noted by name and sets ``event`` (what a lease wait's ``cancel`` takes); with ``interrupt=True`` the first one
also raises KeyboardInterrupt where the main thread is, so blocking code unwinds through its ``finally`` blocks.
The handlers that were there before are put back on leaving, so the rest of the command keeps its behaviour.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """``with StopSignals() as stop:``: ``stop.name`` is the first signal caught (``SIGTERM``), else None.

    Outside the main thread (where Python cannot set handlers) nothing is caught and the scope only gives an
    event that is never set.
    """

    def __init__(self, *, interrupt: bool = False):
        self.interrupt = interrupt
        self.event = threading.Event()
        self.name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._caught) for sig in SIGNALS}
        return self

    def _caught(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002 - a signal handler's signature
        first = self.name is None
        if first:
            self.name = signal.Signals(signum).name
        self.event.set()
        if self.interrupt and first:  # a second signal does not cut off the clean-up the first one started
            raise KeyboardInterrupt(self.name)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
