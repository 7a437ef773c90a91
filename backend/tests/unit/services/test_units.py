"""The application layer's units of work with a fake router and an in-memory Redis: what a write
invalidates and hands back, what floor a read is given, when the cache is used."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis
import pymysql
import pytest

from app.cache import Cache, CachePolicy, Outcome
from app.cache.entries import encode_tombstone
from app.db import errors as db_errors
from app.db.routing import PRIMARY, UnitOfWork
from app.errors import DatabaseUnavailable, NotFound
from app.resilience.breaker import BreakerPolicy, CircuitBreaker, State
from app.resilience.retry import Retrier, RetryPolicy
from app.services.consistency import Token
from app.services.units import Call, Units, Write


class FakeRouter:
    """Commits writes at GTID; serves reads from NODE, recording the floor each was given."""

    def __init__(self, gtid: str = "0-1-10", node: str = "replica-1") -> None:
        self.gtid, self.node, self.fail_reads = gtid, node, 0
        self.floors: list[str | None] = []

    @contextmanager
    def writer(self) -> Iterator[UnitOfWork]:
        uow = UnitOfWork(PRIMARY, conn=object())
        yield uow
        uow.gtid = self.gtid

    def read(self, fetch: Any, floor: str | None = None, **_: Any) -> tuple[str, Any]:
        self.floors.append(floor)
        if self.fail_reads:
            self.fail_reads -= 1
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")
        return self.node, fetch(object())


def make_units(
    router: FakeRouter, *, breaker_state: State | None = None, cache_enabled: bool = True
) -> tuple[Units, fakeredis.FakeRedis]:
    redis = fakeredis.FakeRedis()
    breaker = CircuitBreaker("redis", BreakerPolicy())
    breaker.force(breaker_state)
    cache = Cache(redis, breaker, CachePolicy())
    retrier = Retrier(RetryPolicy(attempts=2, base_s=0.001, max_wait_s=0.001), db_errors)
    return Units(router, retrier, cache, cache_enabled), redis  # type: ignore[arg-type]


def touch(*keys: str) -> Any:
    def action(unit: Write) -> str:
        unit.touches(*keys)
        return "done"

    return action


def test_a_committed_write_invalidates_its_keys_and_hands_back_its_gtid() -> None:
    units, redis = make_units(FakeRouter(gtid="0-1-10"))
    call = Call()
    assert units.write(call, touch("c1:user:1")) == "done"
    assert redis.get("c1:user:1") == encode_tombstone("0-1-10")
    assert (call.node, call.issued) == (PRIMARY, Token("0-1-10"))


def test_a_write_redis_missed_tells_the_client_to_skip_the_cache() -> None:
    units, _ = make_units(FakeRouter(gtid="0-1-10"), breaker_state=State.OPEN)
    call = Call()
    units.write(call, touch("c1:user:1"))
    assert call.issued == Token("0-1-10", skip_cache=True)


def test_a_write_that_failed_invalidates_nothing_and_hands_back_nothing() -> None:
    units, redis = make_units(FakeRouter())
    call = Call()

    def fails(unit: Write) -> None:
        unit.touches("c1:user:1")
        raise NotFound("user", 1)

    with pytest.raises(NotFound):
        units.write(call, fails)
    assert (redis.get("c1:user:1"), call.issued) == (None, None)


def test_a_cached_read_must_see_the_clients_write_and_the_tombstones() -> None:
    router = FakeRouter()
    units, redis = make_units(router)
    redis.set("c1:user:1", encode_tombstone("1-1-5"))
    call = Call(Token("0-1-7"))
    served = units.cached("c1:user:1", "user", lambda conn: {"id": 1}, call, NotFound("user", 1))
    assert (served.status, served.body, served.outcome) == (200, b'{"id":1}', Outcome.MISS)
    assert router.floors == ["0-1-7,1-1-5"]
    assert (call.node, call.cache) == ("replica-1", "MISS")


def test_a_read_with_a_token_that_skips_the_cache_goes_to_the_database() -> None:
    router = FakeRouter()
    units, redis = make_units(router)
    call = Call(Token("0-1-7", skip_cache=True))
    served = units.cached("c1:user:1", "user", lambda conn: {"id": 1}, call, NotFound("user", 1))
    assert (served.outcome, router.floors, redis.get("c1:user:1")) == (
        Outcome.BYPASS,
        ["0-1-7"],
        None,
    )


def test_nothing_found_is_a_cached_404_with_the_not_found_text() -> None:
    units, _ = make_units(FakeRouter())
    missing = NotFound("user", 9)
    first = units.cached("c1:user:9", "user", lambda conn: None, Call(), missing)
    second = units.cached("c1:user:9", "user", lambda conn: None, Call(), missing)
    assert (first.status, first.body) == (404, b"user 9 does not exist")
    assert second.outcome is Outcome.HIT


def test_with_the_cache_disabled_every_read_bypasses_it() -> None:
    units, redis = make_units(FakeRouter(), cache_enabled=False)
    served = units.cached("c1:user:1", "user", lambda conn: {"id": 1}, Call(), NotFound("user", 1))
    assert (served.outcome, redis.get("c1:user:1")) == (Outcome.BYPASS, None)


def test_a_read_is_retried_and_a_database_that_stays_away_is_unavailable() -> None:
    router = FakeRouter()
    units, _ = make_units(router)
    router.fail_reads = 1
    assert units.read(lambda conn: "rows", Call()) == "rows"
    router.fail_reads = 5
    with pytest.raises(DatabaseUnavailable):
        units.read(lambda conn: "rows", Call())
