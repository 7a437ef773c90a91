"""The bulkhead on an in-memory Redis: a global cap, leases, and a local cap without Redis."""

from __future__ import annotations

from typing import cast

import fakeredis
import pytest

from app.errors import Saturated
from app.resilience.breaker import BreakerPolicy, CircuitBreaker, State
from app.resilience.bulkhead import KEY, Bulkhead


@pytest.fixture
def breaker() -> CircuitBreaker:
    return CircuitBreaker("redis", BreakerPolicy())


def test_slots_up_to_the_limit_then_saturated_then_free_again(breaker: CircuitBreaker) -> None:
    redis = fakeredis.FakeRedis()
    bulkhead = Bulkhead(redis, breaker, limit=2, lease_s=10)
    releases = [bulkhead.acquire(), bulkhead.acquire()]
    with pytest.raises(Saturated):
        bulkhead.acquire()
    releases[0]()
    bulkhead.acquire()
    assert redis.zcard(KEY) == 2


def test_the_cap_is_shared_by_every_process(breaker: CircuitBreaker) -> None:
    redis = fakeredis.FakeRedis()
    first, second = (Bulkhead(redis, breaker, limit=1, lease_s=10) for _ in range(2))
    first.acquire()
    with pytest.raises(Saturated):
        second.acquire()


def test_a_slot_whose_lease_ran_out_is_taken_back(breaker: CircuitBreaker) -> None:
    redis = fakeredis.FakeRedis()
    bulkhead = Bulkhead(redis, breaker, limit=1, lease_s=10)
    bulkhead.acquire()  # and never released: its process died
    held = cast(list[bytes], redis.zrange(KEY, 0, -1))
    redis.zadd(KEY, dict.fromkeys(held, 0))  # taken long ago
    bulkhead.acquire()


def test_without_redis_each_process_keeps_a_local_cap(breaker: CircuitBreaker) -> None:
    breaker.force(State.OPEN)
    bulkhead = Bulkhead(fakeredis.FakeRedis(), breaker, limit=1, lease_s=10)
    release = bulkhead.acquire()
    with pytest.raises(Saturated):
        bulkhead.acquire()
    release()
    bulkhead.acquire()
