"""Writer round trips bounded by the deadline: connecting, the pool's ping, each statement."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from app.db import deadlines
from app.db.deadlines import DeadlinePassed, bounded, round_trip_s
from app.db.engines import make_engine
from app.db.errors import DEADLINE_PASSED, is_transient
from app.resilience import deadline
from tests.unit.db.test_engines import Opened, settings


class Raw:
    """A PyMySQL connection's timeouts, and what its ping saw of them."""

    def __init__(self) -> None:
        self._read_timeout = self._write_timeout = 10.0
        self.pinged_with: float | None = None

    def ping(self, *args: Any) -> None:
        self.pinged_with = self._read_timeout


def test_a_round_trip_gets_the_time_left_at_most_the_engines_own() -> None:
    assert round_trip_s(10.0) == 10.0  # no deadline: a queue worker's write
    with deadline.within(2.5):
        assert 2.4 < round_trip_s(10.0) <= 2.5
        assert round_trip_s(1.0) == 1.0


def test_a_deadline_passed_sends_nothing_and_is_not_retried() -> None:
    with deadline.within(deadlines.MIN_ROUND_TRIP_S / 2), pytest.raises(DeadlinePassed) as raised:
        round_trip_s(10.0)
    assert raised.value.args[0] == DEADLINE_PASSED
    assert not is_transient(raised.value, write=True)


def test_the_pools_ping_before_a_checkout_is_bounded_too() -> None:
    engine = bounded(make_engine(settings(), "127.0.0.1:1"), 10.0)
    raw = Raw()
    with deadline.within(1.5):
        engine.dialect.do_ping(raw)  # type: ignore[arg-type]
    assert raw.pinged_with is not None
    assert 1.4 < raw.pinged_with <= 1.5
    engine.dialect.do_ping(raw)  # type: ignore[arg-type]
    assert raw.pinged_with == 10.0


def test_a_connection_made_under_a_deadline_waits_no_longer_than_it() -> None:
    engine = bounded(make_engine(settings(), "127.0.0.1:1"), 10.0)
    seen: dict[str, Any] = {}

    @event.listens_for(engine, "do_connect")
    def capture(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        seen.update(params)
        raise Opened

    with deadline.within(0.5), pytest.raises(Opened):
        engine.connect()
    assert 0.4 < seen["connect_timeout"] <= 0.5
    assert 0.4 < seen["read_timeout"] <= 0.5
    assert seen["write_timeout"] == seen["read_timeout"]
