"""Per-key rate limits by tier: GCRA in one Redis Lua script, with a per-tier plan for Redis loss.

GCRA (the generic cell rate algorithm) keeps one number per key, the "theoretical arrival time"
(TAT) of the next request at the steady rate. A request is allowed when, after adding one
emission interval (1 / rate) to the TAT, the TAT is no further ahead of now than the burst
allows. One GET and one SET in a script: atomic across every API worker, one round trip, and the
time comes from Redis itself, so the workers' clocks do not matter.

When Redis cannot be asked (down, or its breaker is open) each tier follows its own plan:

* ``local``: fail open with a bound: a per-worker GCRA at the tier's rate divided by the number
  of workers sharing the limit (``local_share``), so the sum stays near the tier's limit;
* ``closed``: refuse (the caller answers 503 with Retry-After: the limiter failed, not the client).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from redis import Redis
from redis.exceptions import RedisError

from app.errors import BreakerOpen
from app.resilience.breaker import CircuitBreaker

RedisDown = Literal["local", "closed"]
log = logging.getLogger(__name__)

# KEYS[1]: the key's TAT (µs since the epoch). ARGV: emission interval µs, burst * interval µs.
# Returns {allowed, remaining, retry after µs, reset µs}.
GCRA = """
local now_s, now_us = unpack(redis.call('TIME'))
local now = now_s * 1000000 + now_us
local interval, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat + interval - now
if ahead > capacity then
  return {0, 0, ahead - capacity, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval), 'PX', math.ceil(ahead / 1000))
return {1, math.floor((capacity - ahead) / interval), 0, ahead}
"""


@dataclass(frozen=True)
class Rate:
    """A steady rate and the burst allowed above it."""

    per_s: float
    burst: int

    @property
    def interval_us(self) -> float:
        """Microseconds between requests at the steady rate."""
        return 1_000_000 / self.per_s


@dataclass(frozen=True)
class Decision:
    """The limiter's answer for one request, with what the RateLimit headers report."""

    allowed: bool
    rate: Rate
    remaining: int
    retry_after_s: float
    reset_s: float
    limiter_down: bool = False


class LocalGcra:
    """The same algorithm in this process, for the ``local`` plan while Redis is away."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """CLOCK (seconds) is injectable for tests."""
        self._tat: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def check(self, key: str, rate: Rate) -> Decision:
        """Admit or refuse one request of KEY at RATE."""
        interval = 1 / rate.per_s
        with self._lock:
            now = self._clock()
            if len(self._tat) > 10_000:
                self._tat = {k: t for k, t in self._tat.items() if t > now}
            ahead = max(self._tat.get(key, now), now) + interval - now
            capacity = interval * rate.burst
            if ahead > capacity:
                return Decision(False, rate, 0, ahead - capacity, ahead - interval)
            self._tat[key] = now + ahead
            return Decision(True, rate, int((capacity - ahead) / interval), 0.0, ahead)


class RateLimiter:
    """Checks one request of one key against its tier's rate."""

    def __init__(
        self,
        redis: Redis,
        breaker: CircuitBreaker,
        rates: dict[str, Rate],
        redis_down: dict[str, RedisDown],
        local_share: int,
    ) -> None:
        """RATES and REDIS_DOWN by tier; LOCAL_SHARE: workers sharing each limit (local plan)."""
        self.rates, self.redis_down, self.breaker = rates, redis_down, breaker
        self.local_share = max(local_share, 1)
        self._script = redis.register_script(GCRA)
        self._local = LocalGcra()

    def check(self, key_id: str, tier: str) -> Decision:
        """Admit or refuse one request of KEY_ID (of TIER)."""
        rate = self.rates[tier]
        try:
            answer: list[Any] = self.breaker.call(
                lambda: self._script(
                    keys=[f"rl:{key_id}"], args=[rate.interval_us, rate.interval_us * rate.burst]
                )
            )
        except (RedisError, BreakerOpen) as error:
            return self._without_redis(key_id, tier, rate, error)
        allowed, remaining, retry_us, reset_us = (int(v) for v in answer)
        return Decision(bool(allowed), rate, remaining, retry_us / 1e6, reset_us / 1e6)

    def _without_redis(self, key_id: str, tier: str, rate: Rate, error: Exception) -> Decision:
        plan = self.redis_down[tier]
        log.debug(
            "rate limiter without Redis",
            extra={"tier": tier, "plan": plan, "error": type(error).__name__},
        )
        if plan == "closed":
            retry = self.breaker.policy.open_s
            return Decision(False, rate, 0, retry, retry, limiter_down=True)
        share = Rate(rate.per_s / self.local_share, max(rate.burst // self.local_share, 1))
        return self._local.check(key_id, share)
