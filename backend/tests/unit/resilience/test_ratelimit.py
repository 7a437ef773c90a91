"""Per-key limits: the GCRA arithmetic, and each tier's plan when Redis is down."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.resilience.breaker import BreakerPolicy, CircuitBreaker
from app.resilience.ratelimit import LocalGcra, Rate, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_gcra_allows_the_burst_then_the_steady_rate() -> None:
    clock = Clock()
    gcra, rate = LocalGcra(clock), Rate(per_s=10, burst=5)
    decisions = [gcra.check("k", rate) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].retry_after_s == pytest.approx(0.1)
    clock.now += 0.1  # one emission interval later, exactly one more request fits
    assert gcra.check("k", rate).allowed
    assert not gcra.check("k", rate).allowed


def test_keys_do_not_share_a_bucket() -> None:
    gcra, rate = LocalGcra(Clock()), Rate(per_s=1, burst=1)
    assert gcra.check("noisy", rate).allowed
    assert not gcra.check("noisy", rate).allowed
    assert gcra.check("quiet", rate).allowed


class DownRedis:
    """A Redis whose scripts fail as if the server were gone."""

    def register_script(self, source: str) -> Any:
        def run(**_: Any) -> Any:
            raise RedisConnectionError("down")

        return run


def limiter() -> RateLimiter:
    return RateLimiter(
        DownRedis(),  # type: ignore[arg-type]
        CircuitBreaker("redis", BreakerPolicy(open_s=3)),
        {"critical": Rate(100, 10), "standard": Rate(10, 4)},
        {"critical": "local", "standard": "closed"},
        local_share=2,
    )


def test_without_redis_the_closed_tier_is_refused_as_limiter_down() -> None:
    decision = limiter().check("k1", "standard")
    assert not decision.allowed
    assert decision.limiter_down
    assert decision.retry_after_s == 3


def test_without_redis_the_local_tier_gets_its_share_of_the_limit() -> None:
    rl = limiter()
    allowed = [rl.check("k2", "critical").allowed for _ in range(8)]
    assert allowed == [True] * 5 + [False] * 3  # burst 10 shared by 2 workers
