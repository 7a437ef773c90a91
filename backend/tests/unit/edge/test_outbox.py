"""The relays' word on the outbox and what a purger makes of it (messaging/outbox_status.py,
edge/outbox.py)."""

from __future__ import annotations

import asyncio
import math
import time
from types import SimpleNamespace

import pytest

from app.edge.outbox import OutboxWatch
from app.messaging import outbox_status
from app.messaging.outbox_status import OutboxStatus


def test_a_status_comes_back_as_it_was_sent() -> None:
    status = OutboxStatus(1_765_000_000.25, 0.125)
    assert outbox_status.parse(status.payload()) == status


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b'{"looked_at": 1}',
        b'{"looked_at": "soon", "oldest_wait_s": 0}',
        b'{"looked_at": 1, "oldest_wait_s": -1}',
        b'{"looked_at": 1e999, "oldest_wait_s": 0}',
        b'{"looked_at": NaN, "oldest_wait_s": 0}',
    ],
)
def test_anything_else_is_no_status(payload: bytes) -> None:
    assert outbox_status.parse(payload) is None


def test_the_wait_grows_with_the_time_since_the_look_and_a_clock_behind_counts_none() -> None:
    status = OutboxStatus(100.0, 0.5)
    assert status.waited_s(102.0) == 2.5
    assert status.waited_s(99.0) == 0.5


def heard(watch: OutboxWatch, status: OutboxStatus) -> None:
    asyncio.run(watch.heard(SimpleNamespace(data=status.payload())))  # type: ignore[arg-type]


def test_no_word_is_a_wait_without_end_and_an_older_look_changes_nothing() -> None:
    watch = OutboxWatch()
    assert math.isinf(watch.waited_s())
    now = time.time()
    heard(watch, OutboxStatus(now, 0.0))
    heard(watch, OutboxStatus(now - 10, 0.0))  # a word delayed, or a relay after a pause
    assert watch.waited_s() < 1.0
    heard(watch, OutboxStatus(now, 5.0))  # the same look's time, a backlog seen
    assert watch.waited_s() >= 5.0
