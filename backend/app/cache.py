"""Cache-aside in Redis: ready-to-send bodies, TTL with jitter, safe invalidation, no stampedes.

What is stored under a key is one of:

* an entry ``E|status|soft_expiry_ms|delta_ms|body``: the exact response body (a 200, or a 404
  kept for a shorter, negative TTL), so a hit costs one GET and no serialisation. After its soft
  expiry an entry lives on for ``stale_grace_s``, served as STALE while one request refreshes it;
* a tombstone ``T|gtid`` written by invalidation after a write commits. A reader that meets it
  must load from a node that has applied that GTID, so a replica that lags behind the write
  cannot put the old row back.

Fills are compare-and-set (a Lua script): a loader writes its result only if the key still holds
what it saw before loading (nothing, a tombstone, or the entry it refreshes). A write that lands
meanwhile replaces that value with its tombstone, so the loader's possibly older data is dropped.

Stampedes: on a miss only the request that takes a short lock (SET NX PX, always expiring) loads;
the others poll briefly for its result. Before expiry, XFetch (Vattani et al., VLDB 2015) lets one
request refresh early with a probability that grows as expiry nears and with the cost of a load.

Every Redis call of a request goes through a circuit breaker: with Redis down or slow the cache is
bypassed at once (BYPASS). A failed invalidation is kept and written before this process reads the
cache again, and by a background thread every ``invalidation_retry_s``, around the breaker: a
tombstone that waited for this worker's next read, or for its breaker to close, would let every
other worker serve the old entry meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from redis import Redis
from redis.exceptions import RedisError

from app.db.consistency import newest
from app.ids import unique_hex
from app.near_cache import NearCache
from app.resilience.breaker import BreakerOpen, CircuitBreaker

T = TypeVar("T")
log = logging.getLogger(__name__)

# Set KEYS[1] to ARGV[2] (PX ARGV[3]) only if it still holds ARGV[1] ('' = nothing); then
# release the lock KEYS[2] if ARGV[4] still owns it.
FILL = """
local current = redis.call('GET', KEYS[1])
local filled = 0
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  filled = 1
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then
  redis.call('DEL', KEYS[2])
end
return filled
"""


# One round trip for every read: the value of KEYS[1]; when it holds no entry (nothing, or a
# tombstone), also try to take the stampede lock KEYS[2] for ARGV[1], expiring in ARGV[2] ms.
GET_OR_LOCK = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, 2) == 'E|' then
  return {value, 0}
end
local locked = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
return {value, locked and 1 or 0}
"""


class Outcome(StrEnum):
    """How a read used the cache (the X-Cache header)."""

    HIT = "HIT"
    MISS = "MISS"
    STALE = "STALE"
    BYPASS = "BYPASS"


@dataclass(frozen=True)
class Entry:
    """A cached response."""

    status: int
    body: bytes
    soft_expiry_ms: int
    delta_ms: int
    raw: bytes


@dataclass(frozen=True)
class Tombstone:
    """The mark a write leaves: readers must see at least this GTID."""

    gtid: str
    raw: bytes


@dataclass(frozen=True)
class Served:
    """What a cached read answers."""

    status: int
    body: bytes
    outcome: Outcome


@dataclass(frozen=True)
class CachePolicy:
    """Timings of the cache, from settings (see .env.example)."""

    ttl_s: float = 60.0
    ttl_jitter: float = 0.1
    negative_ttl_s: float = 5.0
    stale_grace_s: float = 10.0
    tombstone_ttl_s: float = 30.0
    lock_ttl_ms: int = 2000
    lock_wait_ms: int = 500
    xfetch_beta: float = 1.0
    invalidation_retry_s: float = 0.2


Loader = Callable[[str | None], tuple[int, bytes]]
CHANGED_PREFIX = "changed:"


def changed_key(key: str) -> str:
    """The marker a write sets next to cache key KEY ("c1:user:7" -> "changed:c1:user:7")."""
    return CHANGED_PREFIX + key


def now_ms() -> int:
    """Wall-clock milliseconds (entries are shared by every process)."""
    return int(time.time() * 1000)


def parse(raw: bytes | None) -> Entry | Tombstone | None:
    """Decode what a key holds."""
    if raw is None:
        return None
    if raw.startswith(b"T|"):
        return Tombstone(raw[2:].decode(), raw)
    _, status, soft, delta, body = raw.split(b"|", 4)
    return Entry(int(status), body, int(soft), int(delta), raw)


class Cache:
    """Cache-aside reads and invalidation for response bodies."""

    def __init__(
        self,
        redis: Redis,
        breaker: CircuitBreaker,
        policy: CachePolicy,
        near: NearCache | None = None,
    ) -> None:
        """REDIS is the client; BREAKER guards every call to it; NEAR keeps entries in-process."""
        self.redis, self.breaker, self.policy, self.near = redis, breaker, policy, near
        self._fill = redis.register_script(FILL)
        self._get_or_lock = redis.register_script(GET_OR_LOCK)
        self._pending: dict[str, str] = {}  # key -> GTID of invalidations Redis has not seen
        self._pending_lock = threading.Lock()
        self._missed = threading.Event()  # set while invalidations wait for Redis

    def _call(self, fn: Callable[[], T]) -> T:
        """One Redis call under the breaker; any failure is CacheUnavailable."""
        try:
            return self.breaker.call(fn)
        except (RedisError, BreakerOpen) as error:
            raise CacheUnavailable(str(error)) from error

    def read(self, key: str, load: Loader, min_gtid: str | None = None) -> Served:
        """Answer from the cache, or load (once, however many ask) and fill it."""
        near = self.near if min_gtid is None else None  # token reads ask Redis itself
        if near is not None and (held := near.get(key)) is not None:
            return Served(held.status, held.body, Outcome.HIT)
        since = near.mark() if near is not None else 0
        try:
            self._flush_pending()
            token = unique_hex()
            raw, locked = self._call(
                lambda: self._get_or_lock(
                    keys=[key, f"{key}:lock"], args=[token, self.policy.lock_ttl_ms]
                )
            )
            found = parse(raw)
            if isinstance(found, Entry):
                served = self._serve_entry(key, found, load)
                if near is not None and served.body is found.body:
                    near.put(key, found, since, (found.soft_expiry_ms - now_ms()) / 1000)
                return served
            floor = newest(min_gtid, found.gtid if found else None)
            expected = found.raw if found else b""
            lock = token if locked else None
            if lock is None and (waited := self._wait_for_fill(key)):
                return Served(waited.status, waited.body, Outcome.HIT)
            return self._load_and_fill(key, load, floor, expected, lock or "")
        except CacheUnavailable:
            status, body = load(min_gtid)
            return Served(status, body, Outcome.BYPASS)

    def _serve_entry(self, key: str, entry: Entry, load: Loader) -> Served:
        now = now_ms()
        if not self._should_refresh(entry, now):
            return Served(entry.status, entry.body, Outcome.HIT)
        lock = self._try_lock(key)
        if lock is None:  # someone else refreshes it
            outcome = Outcome.STALE if now >= entry.soft_expiry_ms else Outcome.HIT
            return Served(entry.status, entry.body, outcome)
        return self._load_and_fill(key, load, None, entry.raw, lock)

    def _should_refresh(self, entry: Entry, now: int) -> bool:
        """XFetch: refresh early with a probability rising as expiry nears and loads get slower."""
        gap = entry.delta_ms * self.policy.xfetch_beta * -math.log(1.0 - random.random())
        return now + gap >= entry.soft_expiry_ms

    def _try_lock(self, key: str) -> str | None:
        token = unique_hex()
        taken = self._call(
            lambda: self.redis.set(f"{key}:lock", token, nx=True, px=self.policy.lock_ttl_ms)
        )
        return token if taken else None

    def _wait_for_fill(self, key: str) -> Entry | None:
        """Poll for the entry the lock holder is loading, up to lock_wait_ms."""
        deadline = time.monotonic() + self.policy.lock_wait_ms / 1000
        while time.monotonic() < deadline:
            time.sleep(0.01)
            found = parse(self._call(lambda: self.redis.get(key)))  # type: ignore[arg-type]
            if isinstance(found, Entry):
                return found
        return None

    def _load_and_fill(
        self, key: str, load: Loader, floor: str | None, expected: bytes, lock: str
    ) -> Served:
        started = time.monotonic()
        status, body = load(floor)
        delta_ms = max(int((time.monotonic() - started) * 1000), 1)
        ttl_s = self.policy.ttl_s * random.uniform(
            1 - self.policy.ttl_jitter, 1 + self.policy.ttl_jitter
        )
        if status != 200:
            ttl_s = self.policy.negative_ttl_s
        soft_expiry = now_ms() + int(ttl_s * 1000)
        hard_ms = int(ttl_s * 1000) + (
            int(self.policy.stale_grace_s * 1000) if status == 200 else 0
        )
        entry = b"E|%d|%d|%d|" % (status, soft_expiry, delta_ms) + body
        # If Redis fails now the answer is still good; the next reader loads again.
        with contextlib.suppress(CacheUnavailable):
            self._call(
                lambda: self._fill(keys=[key, f"{key}:lock"], args=[expected, entry, hard_ms, lock])
            )
        return Served(status, body, Outcome.MISS)

    def invalidate(self, keys: list[str], gtid: str) -> bool:
        """After a commit, replace KEYS with tombstones of GTID; False if Redis missed it."""
        with self._pending_lock:
            for key in keys:
                self._pending[key] = newest(self._pending.get(key), gtid) or ""
        try:
            self._flush_pending()
        except CacheUnavailable:
            self._missed.set()
            return False
        return True

    def _flush_pending(self) -> None:
        """Write pending tombstones: this write's, and any that failed while Redis was away."""
        if self._pending:
            self._call(self._write_pending)

    def _write_pending(self) -> int:
        """Write the pending tombstones; returns how many keys that took."""
        with self._pending_lock:
            pending = dict(self._pending)
        if not pending:
            return 0
        ttl_ms = int(self.policy.tombstone_ttl_s * 1000)
        pipe = self.redis.pipeline(transaction=False)
        for key, gtid in pending.items():
            pipe.set(key, f"T|{gtid}".encode(), px=ttl_ms)
            # Writes also touch the key's "changed" marker, which near caches watch: fills
            # rewrite cache keys all the time, and must not wake every worker.
            pipe.set(changed_key(key), gtid, px=ttl_ms)
        pipe.execute()
        with self._pending_lock:
            for key, gtid in pending.items():
                if self._pending.get(key) == gtid:
                    del self._pending[key]
        return len(pending)

    def start_retrying(self) -> None:
        """Retry missed invalidations in a background thread (a no-op when the interval is 0)."""
        if self.policy.invalidation_retry_s > 0:
            threading.Thread(
                target=self._retry_pending, name="cache-invalidations", daemon=True
            ).start()

    def _retry_pending(self) -> None:
        while True:
            self._missed.wait()  # asleep until an invalidation misses
            time.sleep(self.policy.invalidation_retry_s)
            try:
                written = self._write_pending()  # around the breaker; bounded by socket timeout
            except RedisError:
                continue
            self._missed.clear()
            if self._pending:  # missed again meanwhile
                self._missed.set()
            if written:  # else a read's flush wrote them first
                log.info("missed cache invalidations written", extra={"keys": written})


class CacheUnavailable(Exception):
    """Redis could not be used for this call (down, slow, or its breaker is open)."""
