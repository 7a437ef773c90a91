"""The heartbeat ends on SIGTERM by itself (as a container's PID 1 nothing else would end it)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from app.processes.heartbeat import stop_on_signals


@pytest.fixture
def handlers() -> Iterator[None]:
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_beat_loop(handlers: None, number: signal.Signals) -> None:
    stopping = stop_on_signals()
    assert not stopping.is_set()
    os.kill(os.getpid(), number)
    assert stopping.wait(5)
