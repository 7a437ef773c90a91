"""A bulkhead: a cap on concurrent reads that fall back to the primary.

When no replica can serve, reads go to the primary, whose real job is taking writes. The cap
keeps a flood of fallback reads from using up its connections and CPU: a read that finds the cap
full is refused at once (the API answers 503 with Retry-After), never queued.

The cap is global across API processes: each slot is a member of a Redis sorted set scored by
the time it was taken, and slots older than a lease are dropped, so a process that dies holding
one cannot leak it. Without Redis (down, or its breaker open) each process falls back to a local
cap of its own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError

from app.errors import BreakerOpen, Saturated
from app.ids import unique_hex
from app.resilience.breaker import CircuitBreaker

KEY = "bulkhead:primary-reads"
# Drop expired slots, then take one if fewer than the limit are held. Time is Redis's own.
ACQUIRE = """
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class Bulkhead:
    """Global cap on concurrent primary fallback reads, with a local cap when Redis is away."""

    def __init__(self, redis: Redis, breaker: CircuitBreaker, limit: int, lease_s: float) -> None:
        """LIMIT slots in all; a slot is forgotten LEASE_S after it was taken."""
        self.redis, self.breaker, self.limit = redis, breaker, limit
        self.lease_ms = int(lease_s * 1000)
        self._acquire = redis.register_script(ACQUIRE)
        self._local = threading.BoundedSemaphore(limit)

    def acquire(self) -> Callable[[], None]:
        """Take a slot or raise Saturated; returns the function that gives it back."""
        member = unique_hex()
        try:
            taken = self.breaker.call(
                lambda: self._acquire(keys=[KEY], args=[self.limit, self.lease_ms, member])
            )
        except (RedisError, BreakerOpen):
            return self._acquire_local()
        if not taken:
            raise Saturated(f"{self.limit} fallback reads already running on the primary")
        return lambda: self._release(member)

    def _release(self, member: str) -> None:
        with contextlib.suppress(RedisError, BreakerOpen):  # else the lease expires the slot
            self.breaker.call(lambda: self.redis.zrem(KEY, member))

    def _acquire_local(self) -> Callable[[], None]:
        if not self._local.acquire(blocking=False):
            raise Saturated(f"{self.limit} fallback reads already running in this process")
        return self._local.release
