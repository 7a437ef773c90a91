"""Cache-aside reads in Redis: ready-to-send bodies, TTL with jitter, no stampedes, safe fills.

Fills are compare-and-set (entries.FILL): a loader writes its result only if the key still holds
what it saw before loading (nothing, a tombstone, or the entry it refreshes). A write that lands
meanwhile replaces that value with its tombstone, so the loader's possibly older data is dropped.

Stampedes: on a miss only the request that takes a short lock (SET NX PX, always expiring) loads;
the others poll briefly for its result. Before expiry, XFetch (Vattani et al., VLDB 2015) lets one
request refresh early with a probability that grows as expiry nears and with the cost of a load.

The loader is told the tombstone the read met (its GTID, or None): what a read must then see is
the application layer's decision (app.services.consistency), not the cache's.

Every Redis call of a request goes through a circuit breaker: with Redis down or slow the cache is
bypassed at once (BYPASS).

Direct loads: a read with nothing it must see (no consistency token) of a key that no write
touched within the tombstone's lifetime, as this process's near cache heard (near.unchanged),
and that this process has not loaded within the admission window, reads the database without
asking Redis: there is no tombstone whose GTID the read must see, and a first miss stores
nothing anyway (admission). Its next read here within the window asks Redis, admitted at once
(this process has seen it twice). Most reads of a Zipf mix's cold tail, and most of what nginx's
edge asks for (it keeps the answer itself), never reach Redis. The stampede bound becomes one
load per process, then the lock. An edge fill takes this path (or a near-cache hit) only while
its process has applied every marker that reached it (near.caught_up). Every other read takes
the path above.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from redis import Redis
from redis.exceptions import RedisError

from app import metrics
from app.cache.entries import (
    FILL,
    GET_OR_LOCK,
    NOT_ADMITTED,
    CachePolicy,
    CacheUnavailable,
    Entry,
    Outcome,
    Served,
    encode_entry,
    now_ms,
    parse,
)
from app.cache.invalidation import Invalidations
from app.cache.near import NearCache
from app.errors import BreakerOpen
from app.ids import unique_hex
from app.resilience.breaker import CircuitBreaker

T = TypeVar("T")
# Keys this process loaded without asking Redis, with when (the next read within the admission
# window asks Redis, admitted at once); the oldest are forgotten beyond this many.
DIRECT_LOADS_REMEMBERED = 100_000
# A load: given the GTID of the tombstone the read met (or None), the status and body to serve.
Loader = Callable[[str | None], tuple[int, bytes]]


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
        self._direct: OrderedDict[str, float] = OrderedDict()
        self._admission_ms = int(policy.admission_window_s * 1000)
        self._fill = redis.register_script(FILL)
        self._get_or_lock = redis.register_script(GET_OR_LOCK)
        self.invalidations = Invalidations(
            redis, self._call, policy.tombstone_ttl_s, policy.invalidation_retry_s
        )

    def _call(self, fn: Callable[[], T]) -> T:
        """One Redis call under the breaker; any failure is CacheUnavailable."""
        try:
            return self.breaker.call(fn)
        except (RedisError, BreakerOpen) as error:
            raise CacheUnavailable(str(error)) from error

    def read(
        self, key: str, load: Loader, *, near: bool = True, direct: bool = False, edge: bool = False
    ) -> Served:
        """Answer from the cache, or load (once, however many ask) and fill it.

        NEAR False skips this process's near cache (a read that must see a write asks Redis).
        DIRECT: the read must see no particular write, so a quiet key may be loaded without
        asking Redis (above). EDGE: nginx's edge keeps the answer for long, so this process's
        word (the near cache, a direct load) counts only once it has heard every marker that
        reached it (near.caught_up); otherwise the read asks Redis, whose tombstone is there
        before the write answers.
        """
        near_cache = self.near if near else None
        if edge and (near_cache is not None or direct) and not self._caught_up():
            near_cache, direct = None, False
        if near_cache is not None and (held := near_cache.get(key)) is not None:
            return Served(held.status, held.body, Outcome.HIT)
        admission_ms = self._admission_ms
        # (Direct loads rely on admission: with it off, every miss is to be stored.)
        if direct and admission_ms and self.near is not None and self.near.unchanged(key):
            if not self._seen_here_lately(key):
                status, body = load(None)
                return Served(status, body, Outcome.MISS, direct=True)
            admission_ms = 0  # its second read here: filled on this miss
        return self._read_through(key, load, near_cache, admission_ms)

    def _read_through(
        self, key: str, load: Loader, near_cache: NearCache | None, admission_ms: int
    ) -> Served:
        """Through Redis: the entry, or the lock and a load that fills it (module docstring)."""
        since = near_cache.mark() if near_cache is not None else 0
        try:
            self.invalidations.flush()
            token = unique_hex()
            raw, locked = self._call(
                lambda: self._get_or_lock(
                    keys=[key, f"{key}:lock", f"{key}:seen"],
                    args=[token, self.policy.lock_ttl_ms, admission_ms],
                )
            )
            if locked == NOT_ADMITTED:
                return self._load_first_miss(key, load)
            found = parse(raw)
            if isinstance(found, Entry):
                served = self._serve_entry(key, found, load)
                if near_cache is not None and served.body is found.body:
                    near_cache.put(key, found, since, (found.soft_expiry_ms - now_ms()) / 1000)
                return served
            expected = found.raw if found else b""
            if not locked and (waited := self._wait_for_fill(key)):
                return Served(waited.status, waited.body, Outcome.HIT)
            lock = token if locked else ""
            return self._load_and_fill(key, load, found.gtid if found else None, expected, lock)
        except CacheUnavailable:
            status, body = load(None)
            return Served(status, body, Outcome.BYPASS)

    def _caught_up(self) -> bool:
        """Whether this process has applied every marker that reached it (and has a near cache)."""
        if self.near is None:
            return False
        caught_up = self.near.caught_up()
        if not caught_up:
            metrics.CACHE_EDGE_FILLS_BEHIND.inc()
        return caught_up

    def _seen_here_lately(self, key: str) -> bool:
        """Whether this process loaded KEY directly within the admission window; if not, note
        that it does now."""
        direct, now = self._direct, time.monotonic()
        loaded_at = direct.get(key)
        if loaded_at is not None and now - loaded_at <= self.policy.admission_window_s:
            return True
        direct[key] = now
        direct.move_to_end(key)
        if len(direct) > DIRECT_LOADS_REMEMBERED:
            direct.popitem(last=False)
        return False

    def invalidate(self, keys: list[str], gtid: str, notify: tuple[str, ...] = ()) -> bool:
        """After a commit, replace KEYS with tombstones of GTID and publish on the NOTIFY
        channels, in one round trip; False if Redis missed it."""
        return self.invalidations.invalidate(keys, gtid, notify)

    def start_retrying(self) -> None:
        """Retry missed invalidations in the background (see invalidation.py)."""
        self.invalidations.start_retrying()

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

    def _load_first_miss(self, key: str, load: Loader) -> Served:
        """A key's first miss in the admission window: most such keys are never asked for again
        (the cold tail of a Zipf mix), so the answer is not stored and the miss costs one round
        trip, as a read with no cache at all costs none. A 404 is stored all the same: negative
        caching is for ids asked for again and again, and its entry is small."""
        status, body = load(None)
        if status == 200:
            return Served(status, body, Outcome.MISS)
        return self._fill_answer(key, status, body, 1, b"", "")

    def _load_and_fill(
        self, key: str, load: Loader, tombstone: str | None, expected: bytes, lock: str
    ) -> Served:
        started = time.monotonic()
        status, body = load(tombstone)
        delta_ms = max(int((time.monotonic() - started) * 1000), 1)
        return self._fill_answer(key, status, body, delta_ms, expected, lock)

    def _fill_answer(
        self, key: str, status: int, body: bytes, delta_ms: int, expected: bytes, lock: str
    ) -> Served:
        """Store STATUS and BODY under KEY if it still holds EXPECTED; release LOCK."""
        policy = self.policy
        ttl_s = policy.ttl_s * random.uniform(1 - policy.ttl_jitter, 1 + policy.ttl_jitter)
        if status != 200:
            ttl_s = policy.negative_ttl_s
        soft_expiry = now_ms() + int(ttl_s * 1000)
        hard_ms = int(ttl_s * 1000) + (int(policy.stale_grace_s * 1000) if status == 200 else 0)
        entry = encode_entry(status, soft_expiry, delta_ms, body)
        # If Redis fails now the answer is still good; the next reader loads again.
        with contextlib.suppress(CacheUnavailable):
            self._call(
                lambda: self._fill(keys=[key, f"{key}:lock"], args=[expected, entry, hard_ms, lock])
            )
        return Served(status, body, Outcome.MISS)
