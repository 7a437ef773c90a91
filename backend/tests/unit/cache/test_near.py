"""The near cache's bookkeeping: what it keeps, for how long, and what an invalidation drops."""

from __future__ import annotations

import socket
import time

import fakeredis

from app.cache.near import NearCache


def near_cache(redis: fakeredis.FakeRedis, max_entries: int = 10) -> NearCache:
    near = NearCache(redis, "changed:", ttl_s=30, max_entries=max_entries)
    near.redirect_id = 1  # as if subscribed to invalidations
    return near


def test_without_a_subscription_nothing_is_kept(redis: fakeredis.FakeRedis) -> None:
    near = NearCache(redis, "changed:", ttl_s=30, max_entries=10)
    near.put("k", "v", near.mark(), 10)
    assert near.get("k") is None


def test_a_kept_entry_is_served_until_a_marker_of_its_key_changes(
    redis: fakeredis.FakeRedis,
) -> None:
    near = near_cache(redis)
    near.put("k", "v", near.mark(), 10)
    assert near.get("k") == "v"
    near._invalidate([b"changed:k"])
    assert near.get("k") is None


def test_a_put_overtaken_by_an_invalidation_is_refused(redis: fakeredis.FakeRedis) -> None:
    near = near_cache(redis)
    since = near.mark()  # a read starts
    near._invalidate([b"changed:k"])  # a write lands meanwhile
    near.put("k", "old", since, 10)
    assert near.get("k") is None


def test_an_entry_never_outlives_its_own_freshness(redis: fakeredis.FakeRedis) -> None:
    near = near_cache(redis)
    near.put("k", "v", near.mark(), 0)
    assert near.get("k") is None


def test_the_least_recently_used_entry_goes_first(redis: fakeredis.FakeRedis) -> None:
    near = near_cache(redis, max_entries=2)
    for key in ("a", "b"):
        near.put(key, key, near.mark(), 10)
    near.get("a")
    near.put("c", "c", near.mark(), 10)
    assert (near.get("a"), near.get("b"), near.get("c")) == ("a", None, "c")


def test_a_flush_forgets_everything(redis: fakeredis.FakeRedis) -> None:
    near = near_cache(redis)
    near.put("k", "v", near.mark(), 10)
    near._invalidate(None)
    assert near.get("k") is None


def watching(redis: fakeredis.FakeRedis, heard_for_s: float) -> NearCache:
    """A near cache that has heard every marker for the last HEARD_FOR_S, watching 30 s."""
    near = NearCache(redis, "changed:", ttl_s=30, max_entries=10, watch_s=30)
    near.redirect_id = 1
    near._heard_since = time.monotonic() - heard_for_s
    return near


def test_a_key_is_vouched_unchanged_only_once_a_whole_watch_was_heard(
    redis: fakeredis.FakeRedis,
) -> None:
    assert not watching(redis, heard_for_s=5).unchanged("k")  # a marker may have been missed
    assert watching(redis, heard_for_s=31).unchanged("k")


def test_a_key_written_within_the_watch_is_not_vouched_for(redis: fakeredis.FakeRedis) -> None:
    near = watching(redis, heard_for_s=31)
    near._invalidate([b"changed:k"])
    assert (near.unchanged("k"), near.unchanged("other")) == (False, True)
    near._changed_at["k"] = time.monotonic() - 31  # its tombstone has expired
    assert near.unchanged("k")


def test_a_lost_subscription_or_a_flush_starts_the_watch_again(
    redis: fakeredis.FakeRedis,
) -> None:
    near = watching(redis, heard_for_s=31)
    near._invalidate(None)
    assert not near.unchanged("k")
    near = watching(redis, heard_for_s=31)
    near.redirect_id = None
    assert not near.unchanged("k")


def test_without_a_watch_nothing_is_vouched_for(redis: fakeredis.FakeRedis) -> None:
    near = NearCache(redis, "changed:", ttl_s=30, max_entries=10)
    near.redirect_id, near._heard_since = 1, time.monotonic() - 3600
    assert not near.unchanged("k")


def subscribed(redis: fakeredis.FakeRedis) -> tuple[NearCache, socket.socket, socket.socket]:
    """A near cache whose subscription is one end of a socket pair; the other end, as Redis."""
    near = near_cache(redis)
    ours, redis_end = socket.socketpair()
    near._socket = ours
    return near, ours, redis_end


def test_it_is_caught_up_only_while_nothing_waits_in_its_subscription(
    redis: fakeredis.FakeRedis,
) -> None:
    near, ours, redis_end = subscribed(redis)
    with ours, redis_end:
        assert near.caught_up()
        redis_end.sendall(b"*3\r\n$7\r\nmessage\r\n")  # a marker not yet read by the listener
        assert not near.caught_up()


def test_it_is_not_caught_up_while_the_listener_applies_what_it_read(
    redis: fakeredis.FakeRedis,
) -> None:
    near, ours, redis_end = subscribed(redis)
    with ours, redis_end, near._reading:  # read, not yet applied
        assert not near.caught_up()


def test_without_a_subscription_it_is_never_caught_up(redis: fakeredis.FakeRedis) -> None:
    assert not NearCache(redis, "changed:", ttl_s=30, max_entries=10).caught_up()
