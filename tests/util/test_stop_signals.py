"""StopSignals: within it SIGTERM and SIGINT stop a command's wait instead of killing it; outside it, the handlers
that were there before answer again (a rollout's later phases keep their behaviour)."""

from __future__ import annotations

import os
import signal

import pytest

from hilt.util.stop_signals import StopSignals


class Reached(Exception):
    """The handler that was there before the scope ran."""


def _outer(signum: int, frame: object) -> None:
    raise Reached(signal.Signals(signum).name)


@pytest.fixture
def outer_handlers():
    previous = {sig: signal.signal(sig, _outer) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def test_a_sigterm_in_the_scope_is_noted_and_sets_the_event_and_the_old_handler_is_back_after(outer_handlers):
    with StopSignals() as stop:
        assert not stop.event.is_set() and stop.name is None
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # a second one keeps the first name
    assert stop.event.is_set() and stop.name == "SIGTERM"
    with pytest.raises(Reached, match="SIGTERM"):
        os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(Reached, match="SIGINT"):
        os.kill(os.getpid(), signal.SIGINT)


def test_interrupt_raises_keyboard_interrupt_once_so_the_clean_up_is_not_cut_off(outer_handlers):
    cleaned = False
    with pytest.raises(KeyboardInterrupt, match="SIGINT"), StopSignals(interrupt=True) as stop:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            raise AssertionError("the signal did not interrupt")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # a second signal during the clean-up: noted, not raised
            cleaned = True
    assert cleaned and stop.name == "SIGINT"
