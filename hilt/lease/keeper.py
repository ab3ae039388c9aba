"""The heartbeat that keeps a lease alive while its holder lives, and tells the holder when it is gone.

The keeper renews at a third of the TTL, so two renewals can fail (a store hiccup) before the lease runs out.
It never pretends: when a renewal says the lease was lost, or when no renewal succeeded for a whole TTL (the
store may have given the nodes away meanwhile), ``lost`` becomes true and ``check()`` raises ``LeaseLost``.
Code that touches nodes calls ``check()`` first, so a holder that lost its lease stops at its next step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from hilt.errors import LeaseLost
from hilt.lease.model import Lease
from hilt.lease.store import LeaseStore

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews ``lease`` in a daemon thread every ``interval_s`` (default: TTL / 3)."""

    def __init__(self, store: LeaseStore, lease: Lease, interval_s: float | None = None,
                 on_lost: Callable[[str], None] | None = None):
        self.store = store
        self.lease = lease
        self.interval_s = interval_s if interval_s is not None else max(lease.ttl_s / 3, 0.05)
        self.on_lost = on_lost
        self.lost_reason: str | None = None
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        if self.lost_reason is None and time.monotonic() - self._last_ok > self.lease.ttl_s:
            self._mark_lost(f"lease lost: lease {self.lease.id} was not renewed for {self.lease.ttl_s:g} s "
                            f"(store unreachable?); its nodes may be leased to someone else")
        return self.lost_reason is not None

    def start(self) -> LeaseKeeper:
        if self._thread is None:
            self._last_ok = time.monotonic()
            self._thread = threading.Thread(target=self._run, name=f"lease-keeper-{self.lease.id}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def check(self) -> None:
        """Raise LeaseLost if the lease is gone: call before every step that touches the nodes."""
        if self.lost:
            raise LeaseLost(self.lost_reason)

    def renew_now(self) -> None:
        """One renewal, in the caller's thread (also what the heartbeat does)."""
        try:
            self.lease = self.store.renew(self.lease.id)
            self._last_ok = time.monotonic()
        except LeaseLost as exc:
            self._mark_lost(str(exc))
        except Exception as exc:  # noqa: BLE001 - a store hiccup must not kill the heartbeat
            log.warning("renewing lease %s failed, will retry: %s", self.lease.id, exc)
            _ = self.lost  # turns into lost once a whole TTL passed without a renewal

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.renew_now()
            if self.lost_reason is not None:
                return

    def _mark_lost(self, reason: str) -> None:
        if self.lost_reason is not None:
            return
        self.lost_reason = reason if reason.startswith("lease lost") else f"lease lost: {reason}"
        log.error("%s", self.lost_reason)
        if self.on_lost is not None:
            try:
                self.on_lost(self.lost_reason)
            except Exception:  # a callback must not kill the heartbeat's report
                log.exception("on_lost callback failed")

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
