"""The circuit breaker: closed, open, half-open; failure rate, slow calls, probes, override."""

from __future__ import annotations

import pytest

from app.errors import BreakerOpen
from app.resilience.breaker import BreakerPolicy, CircuitBreaker, State

POLICY = BreakerPolicy(
    window=10,
    window_s=10.0,
    min_calls=4,
    failure_rate=0.5,
    slow_call_s=0.1,
    open_s=2.0,
    half_open_probes=1,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker() -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker("dep", POLICY, clock), clock


def test_it_stays_closed_below_the_minimum_number_of_calls() -> None:
    b, _ = breaker()
    for _ in range(3):
        b.record(ok=False)
    assert b.state is State.CLOSED


def test_it_opens_when_the_failure_rate_is_reached() -> None:
    b, _ = breaker()
    for ok in (True, False, True, False):
        b.record(ok=ok)
    assert b.state is State.OPEN
    assert not b.allow()


def test_a_success_never_opens_it() -> None:
    b, _ = breaker()
    for _ in range(3):  # failures from an outage, too few to open it
        b.record(ok=False)
    b.record(ok=True)  # the dependency is back: 3 of 4 failed, but this call worked
    assert b.state is State.CLOSED
    b.record(ok=False)  # a new failure does open it
    assert b.state is State.OPEN


def test_failures_older_than_the_window_are_forgotten() -> None:
    b, clock = breaker()
    for _ in range(3):  # an outage this worker saw only a little of
        b.record(ok=False)
    clock.now = 11.0  # long over
    b.record(ok=True)
    b.record(ok=False)  # one dead pooled connection: 1 failure of 2 known, too few to judge
    assert b.state is State.CLOSED
    for _ in range(2):
        b.record(ok=False)  # failures now do count: 3 of 4
    assert b.state is State.OPEN


def test_slow_calls_count_as_failures() -> None:
    b, _ = breaker()
    for _ in range(4):
        b.record(ok=True, duration_s=0.5)
    assert b.state is State.OPEN


def test_an_open_breaker_refuses_calls_without_trying_them() -> None:
    b, _ = breaker()
    b.force(State.OPEN)
    calls = []
    with pytest.raises(BreakerOpen):
        b.call(lambda: calls.append(1))
    assert calls == []


def open_breaker() -> tuple[CircuitBreaker, Clock]:
    b, clock = breaker()
    for _ in range(4):
        b.record(ok=False)
    return b, clock


def test_after_open_s_it_lets_a_limited_number_of_probes_through() -> None:
    b, clock = open_breaker()
    clock.now = 2.0
    assert b.state is State.HALF_OPEN
    assert b.allow()
    assert not b.allow()


def test_a_successful_probe_closes_it() -> None:
    b, clock = open_breaker()
    clock.now = 2.0
    assert b.call(lambda: "ok") == "ok"
    assert b.state is State.CLOSED


def test_a_failed_probe_opens_it_again() -> None:
    b, clock = open_breaker()
    clock.now = 2.0

    def fail() -> None:
        raise ConnectionError("still down")

    with pytest.raises(ConnectionError):
        b.call(fail)
    assert b.state is State.OPEN
    clock.now = 3.9
    assert not b.allow()


def test_force_closed_ignores_failures_until_released() -> None:
    b, _ = breaker()
    b.force(State.CLOSED)
    for _ in range(10):
        b.record(ok=False)
    assert b.allow()
    b.force(None)
    assert b.state is State.CLOSED
