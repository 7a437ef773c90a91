"""Manual override of circuit breakers, shared by every worker of every API replica.

An operator pins a breaker open (take a node out of service now) or closed (ignore a flapping
failure detector) with ``python -m app.processes.cli breaker force NAME open|closed|auto``; the
CLI writes the wish into a Redis hash and each worker applies it within ``poll_s``. Redis is
read directly, not through its own breaker, so the Redis breaker can be overridden too; while
Redis cannot be read, every worker keeps the overrides it last saw.
"""

from __future__ import annotations

import logging
import threading

from redis import Redis
from redis.exceptions import RedisError

from app.resilience.breaker import CircuitBreaker, State

OVERRIDES_KEY = "breaker:overrides"
FORCEABLE = {"open": State.OPEN, "closed": State.CLOSED}
log = logging.getLogger(__name__)


def as_text(value: bytes | str) -> str:
    """A Redis reply as text, whichever way the client decodes."""
    return value.decode() if isinstance(value, bytes) else value


def apply(breakers: dict[str, CircuitBreaker], wanted: dict[str, str]) -> None:
    """Force each breaker named in WANTED; return the others to automatic."""
    for name, breaker in breakers.items():
        state = FORCEABLE.get(wanted.get(name, ""))
        if breaker.forced is not state:
            breaker.force(state)
            log.warning(
                "circuit breaker override",
                extra={"breaker": name, "forced": state.value if state else "auto"},
            )


class OverrideWatcher:
    """A daemon thread per worker that follows the overrides in Redis."""

    def __init__(self, redis: Redis, breakers: dict[str, CircuitBreaker], poll_s: float) -> None:
        """BREAKERS by the name the CLI uses (primary, replica-1, ..., redis)."""
        self.redis, self.breakers, self.poll_s = redis, breakers, poll_s
        self._stop = threading.Event()

    def poll_once(self) -> None:
        """Read the overrides and apply them (kept as they are when Redis cannot be read)."""
        try:
            raw = self.redis.hgetall(OVERRIDES_KEY)
        except RedisError:
            return
        apply(self.breakers, {as_text(k): as_text(v) for k, v in raw.items()})

    def start(self) -> None:
        """Poll in the background until stop() (a no-op when poll_s is 0)."""
        if self.poll_s <= 0:
            return
        self.poll_once()
        threading.Thread(target=self._run, name="breaker-overrides", daemon=True).start()

    def stop(self) -> None:
        """End the polling thread."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll_once()
