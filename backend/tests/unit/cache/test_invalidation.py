"""Invalidation on an in-memory Redis: tombstones, markers, and the retry of missed ones."""

from __future__ import annotations

import fakeredis

from app.cache import Cache, CachePolicy
from app.resilience.breaker import CircuitBreaker, State


def test_a_write_leaves_tombstones_and_markers_that_expire(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache = Cache(redis, breaker, CachePolicy(tombstone_ttl_s=30))
    assert cache.invalidate(["c1:user:1", "c1:posts:1"], "0-1-9")
    assert redis.get("c1:user:1") == redis.get("c1:posts:1") == b"T|0-1-9"
    assert redis.get("changed:c1:user:1") == b"0-1-9"
    assert 0 < redis.pttl("c1:user:1") <= 30_000
    # the marker lives a second: its expiry, broadcast too, must not look like a later write
    assert 0 < redis.pttl("changed:c1:user:1") <= 1_000


def test_a_missed_invalidation_is_kept_and_written_by_the_retry(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache = Cache(redis, breaker, CachePolicy())
    breaker.force(State.OPEN)  # the worker's breaker refuses Redis calls
    assert not cache.invalidate(["c1:user:1"], "0-1-9")
    assert redis.get("c1:user:1") is None
    assert cache.invalidations.retry_once() == 1  # around the breaker
    assert redis.get("c1:user:1") == b"T|0-1-9"
    assert cache.invalidations.retry_once() == 0  # nothing left


def test_pending_tombstones_keep_the_newest_gtid_per_key(
    redis: fakeredis.FakeRedis, breaker: CircuitBreaker
) -> None:
    cache = Cache(redis, breaker, CachePolicy())
    breaker.force(State.OPEN)
    cache.invalidate(["c1:user:1"], "0-1-12")
    cache.invalidate(["c1:user:1"], "0-1-9")
    breaker.force(None)
    cache.read("c1:user:2", lambda tombstone: (200, b"{}"))  # a read flushes what is pending
    assert redis.get("c1:user:1") == b"T|0-1-12"
