"""The cache's read path on an in-memory Redis: hits, misses, tombstones, locks, outages."""

from __future__ import annotations

import time

import fakeredis
import pytest

from app.cache import Cache, CachePolicy, Outcome
from app.cache.entries import Entry, encode_entry, encode_tombstone, now_ms, parse
from app.cache.near import NearCache
from app.resilience.breaker import CircuitBreaker, State

KEY = "c1:user:7"


class Loads:
    """A loader that records the tombstone GTID each load was told, and answers BODY."""

    def __init__(self, status: int = 200, body: bytes = b'{"id":7}') -> None:
        self.status, self.body = status, body
        self.told: list[str | None] = []

    def __call__(self, tombstone: str | None) -> tuple[int, bytes]:
        self.told.append(tombstone)
        return self.status, self.body


def test_a_miss_loads_once_fills_and_the_next_read_is_a_hit(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    # Every key admitted at once: this test is about the fill (admission has tests below).
    cache, load = Cache(redis, breaker, CachePolicy(admission_window_s=0)), Loads()
    first = cache.read(KEY, load)
    second = cache.read(KEY, load)
    assert (first.outcome, second.outcome) == (Outcome.MISS, Outcome.HIT)
    assert first.body == second.body == b'{"id":7}'
    assert load.told == [None]
    assert redis.get(f"{KEY}:lock") is None  # the filler released its lock


def test_a_404_is_kept_for_the_negative_ttl_only(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache = Cache(redis, breaker, CachePolicy(negative_ttl_s=5, ttl_s=60))
    served = cache.read(KEY, Loads(404, b"user 7 does not exist"))
    assert (served.status, served.outcome) == (404, Outcome.MISS)
    assert 0 < redis.pttl(KEY) <= 5000


def test_a_tombstone_tells_the_loader_which_write_it_must_see(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    redis.set(KEY, encode_tombstone("0-1-42"))
    load = Loads()
    assert Cache(redis, breaker, CachePolicy()).read(KEY, load).outcome is Outcome.MISS
    assert load.told == ["0-1-42"]
    stored = redis.get(KEY)
    assert isinstance(stored, bytes)
    assert parse(stored).body == b'{"id":7}'  # type: ignore[union-attr]


def test_a_fill_is_dropped_when_a_write_landed_during_the_load(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache = Cache(redis, breaker, CachePolicy())

    def overtaken(tombstone: str | None) -> tuple[int, bytes]:
        assert cache.invalidate([KEY], "0-1-50")
        return 200, b'{"name":"old"}'

    assert cache.read(KEY, overtaken).body == b'{"name":"old"}'  # this reader still gets it
    assert redis.get(KEY) == b"T|0-1-50"  # but the tombstone stays


def test_a_read_that_finds_the_lock_taken_waits_briefly_then_loads_itself(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    redis.set(f"{KEY}:lock", "someone-else", px=2000)  # a holder that never fills
    load = Loads()
    served = Cache(redis, breaker, CachePolicy(lock_wait_ms=50)).read(KEY, load)
    assert (served.outcome, load.told) == (Outcome.MISS, [None])
    assert redis.get(f"{KEY}:lock") == b"someone-else"  # not this reader's lock to release


def test_with_the_breaker_open_every_read_loads_and_says_bypass(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    breaker.force(State.OPEN)
    load = Loads()
    served = Cache(redis, breaker, CachePolicy()).read(KEY, load)
    assert (served.outcome, served.body, load.told) == (Outcome.BYPASS, b'{"id":7}', [None])
    assert redis.get(KEY) is None


def test_an_entry_past_its_soft_expiry_is_served_stale_while_another_refreshes(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    redis.set(KEY, encode_entry(200, now_ms() - 1, 1, b'{"v":1}'))
    redis.set(f"{KEY}:lock", "refresher", px=2000)
    served = Cache(redis, breaker, CachePolicy()).read(KEY, Loads())
    assert (served.outcome, served.body) == (Outcome.STALE, b'{"v":1}')


@pytest.mark.parametrize("near_allowed", [True, False])
def test_the_near_cache_serves_only_reads_allowed_to_use_it(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker, near_allowed: bool
) -> None:
    near = NearCache(redis, "changed:", ttl_s=30, max_entries=10)
    near.redirect_id = 1  # as if subscribed to invalidations
    cache = Cache(redis, breaker, CachePolicy(), near)
    cache.read(KEY, Loads())  # a first miss: counted, not filled (admission)
    cache.read(KEY, Loads())  # a second miss: filled in Redis
    cache.read(KEY, Loads())  # a hit from Redis: now also held near
    redis.delete(KEY)  # gone from Redis (no marker: near caches are not told)
    served = cache.read(KEY, Loads(body=b'{"id":"reloaded"}'), near=near_allowed)
    assert served.body == (b'{"id":7}' if near_allowed else b'{"id":"reloaded"}')


def test_a_keys_first_miss_is_not_filled_and_costs_one_round_trip(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache, load = Cache(redis, breaker, CachePolicy(admission_window_s=60)), Loads()
    first = cache.read(KEY, load)
    assert (first.outcome, first.body) == (Outcome.MISS, b'{"id":7}')
    assert redis.get(KEY) is None
    assert redis.get(f"{KEY}:lock") is None
    assert 0 < redis.pttl(f"{KEY}:seen") <= 60_000
    second, third = cache.read(KEY, load), cache.read(KEY, load)
    assert (second.outcome, third.outcome) == (Outcome.MISS, Outcome.HIT)
    assert len(load.told) == 2
    assert redis.get(f"{KEY}:lock") is None


def test_a_404_is_kept_on_its_first_miss(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache, load = Cache(redis, breaker, CachePolicy(admission_window_s=60)), Loads(404, b"gone")
    assert cache.read(KEY, load).outcome is Outcome.MISS
    assert cache.read(KEY, load).outcome is Outcome.HIT
    assert len(load.told) == 1


def test_a_key_written_recently_is_filled_on_its_first_miss(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    redis.set(KEY, encode_tombstone("0-1-9"))  # a write: the key will be read again
    cache, load = Cache(redis, breaker, CachePolicy(admission_window_s=60)), Loads()
    assert cache.read(KEY, load).outcome is Outcome.MISS
    assert cache.read(KEY, load).outcome is Outcome.HIT
    assert load.told == ["0-1-9"]


def test_a_404_first_miss_never_overwrites_a_write_that_landed_during_its_load(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache = Cache(redis, breaker, CachePolicy(admission_window_s=60))

    def load_then_write(tombstone: str | None) -> tuple[int, bytes]:
        redis.set(KEY, encode_tombstone("0-1-10"))  # the user is created meanwhile
        return 404, b"gone"

    assert cache.read(KEY, load_then_write).status == 404
    assert redis.get(KEY) == encode_tombstone("0-1-10")


def quiet_cache(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker, admission_window_s: float = 60
) -> Cache:
    """A cache whose near cache has heard every marker for longer than a tombstone lives."""
    near = NearCache(redis, "changed:", ttl_s=30, max_entries=10, watch_s=30)
    near.redirect_id, near._heard_since = 1, time.monotonic() - 31
    return Cache(redis, breaker, CachePolicy(admission_window_s=admission_window_s), near)


def test_a_quiet_keys_first_read_here_loads_without_asking_redis_and_its_second_fills(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache, load = quiet_cache(redis, breaker), Loads()
    first = cache.read(KEY, load, near=False, direct=True)
    assert (first.outcome, first.body, first.direct) == (Outcome.MISS, b'{"id":7}', True)
    assert redis.dbsize() == 0  # not even counted for admission
    # Read again by this process within the admission window: through Redis, with its
    # stampede lock, and admitted at once (this process has seen it twice).
    second = cache.read(KEY, load, near=False, direct=True)
    assert (second.outcome, second.direct) == (Outcome.MISS, False)
    third = cache.read(KEY, load, near=False, direct=True)
    assert third.outcome is Outcome.HIT
    assert len(load.told) == 2
    assert redis.get(f"{KEY}:lock") is None


def test_a_quiet_key_read_again_after_the_admission_window_is_loaded_directly_again(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache = quiet_cache(redis, breaker)
    assert cache.read(KEY, Loads(), direct=True).direct
    cache._direct[KEY] = time.monotonic() - 61  # loaded longer ago than the window
    assert cache.read(KEY, Loads(), direct=True).direct
    assert redis.dbsize() == 0


def test_a_read_of_a_key_written_lately_asks_redis_for_the_writes_gtid(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache, load = quiet_cache(redis, breaker), Loads()
    redis.set(KEY, encode_tombstone("0-1-11"))
    assert cache.near is not None
    cache.near._invalidate([f"changed:{KEY}".encode()])  # the write's marker, heard
    served = cache.read(KEY, load, near=False, direct=True)
    assert (served.direct, load.told) == (False, ["0-1-11"])


class Heard(NearCache):
    """A near cache that has heard every marker for longer than a tombstone lives, and says
    whether it has applied every marker that reached it as told (CAUGHT_UP)."""

    def __init__(self, redis: fakeredis.FakeRedis, caught_up: bool) -> None:
        super().__init__(redis, "changed:", ttl_s=30, max_entries=10, watch_s=30)
        self.redirect_id, self._heard_since = 1, time.monotonic() - 31
        self.is_caught_up = caught_up

    def caught_up(self) -> bool:
        return self.is_caught_up


@pytest.mark.parametrize("caught_up", [True, False])
def test_an_edge_fill_trusts_this_processs_word_only_once_it_heard_every_marker(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker, caught_up: bool
) -> None:
    near = Heard(redis, caught_up)
    cache = Cache(redis, breaker, CachePolicy(admission_window_s=60), near)
    near.put("c1:user:8", Entry(200, b'{"id":8}', now_ms() + 60_000, 1, b""), near.mark(), 30)
    quiet = cache.read(KEY, Loads(), direct=True, edge=True)
    held = cache.read("c1:user:8", Loads(), direct=True, edge=True)
    # Caught up: a quiet key loads directly and a held entry is served from the process.
    # Behind: a marker may wait unheard, so both ask Redis (its tombstone is the truth).
    assert quiet.direct is caught_up
    assert (held.outcome is Outcome.HIT) is caught_up
    assert (redis.dbsize() == 0) is caught_up


@pytest.mark.parametrize(("direct", "admission_window_s"), [(False, 60), (True, 0)])
def test_a_read_that_must_see_a_write_or_with_admission_off_always_asks_redis(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker, direct: bool, admission_window_s: float
) -> None:
    cache = quiet_cache(redis, breaker, admission_window_s)
    served = cache.read(KEY, Loads(), near=False, direct=direct)
    assert not served.direct
    assert redis.dbsize() > 0
