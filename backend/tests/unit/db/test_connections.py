"""Work on pooled connections that may have died: once more on a fresh one, and only then."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from app.db.connections import NoConnection, on_live_connection

LOST = pymysql.err.OperationalError(2013, "Lost connection to server during query")


class Pool:
    """Hands out connections; the first DEAD of them have lost their server."""

    def __init__(self, *, dead: int = 0, up: bool = True) -> None:
        self.dead, self.up, self.disposed, self.invalidated, self.closed = dead, up, 0, 0, 0

    def raw_connection(self) -> Pool:
        if not self.up:
            raise pymysql.err.OperationalError(2003, "Can't connect")
        return self

    def dispose(self) -> None:
        self.disposed += 1

    def invalidate(self) -> None:
        self.invalidated += 1

    def close(self) -> None:
        self.closed += 1

    def work(self, conn: Any) -> str:
        if self.dead:
            self.dead -= 1
            raise LOST
        return "rows"


def test_a_dead_pooled_connection_is_replaced_and_the_pool_reset() -> None:
    pool = Pool(dead=1)
    assert on_live_connection(pool, pool.work) == "rows"  # type: ignore[arg-type]
    assert (pool.invalidated, pool.disposed) == (1, 1)


def test_a_fresh_connection_that_breaks_too_is_the_nodes_failure() -> None:
    pool = Pool(dead=2)
    with pytest.raises(pymysql.err.OperationalError):
        on_live_connection(pool, pool.work)  # type: ignore[arg-type]
    assert (pool.invalidated, pool.disposed) == (2, 1)


def test_a_node_that_cannot_be_reached_raises_no_connection() -> None:
    with pytest.raises(NoConnection):
        on_live_connection(Pool(up=False), lambda conn: "never")  # type: ignore[arg-type]


def test_an_error_of_the_work_itself_is_not_retried_and_keeps_the_connection() -> None:
    pool = Pool()

    def wrong(conn: Any) -> None:
        raise KeyError("no such column")

    with pytest.raises(KeyError):
        on_live_connection(pool, wrong)  # type: ignore[arg-type]
    assert (pool.invalidated, pool.disposed, pool.closed) == (0, 0, 1)


def timed_out() -> pymysql.err.OperationalError:
    """What PyMySQL raises when a round trip passes its read timeout (a frozen server): 2013,
    raised while handling the socket's TimeoutError."""
    lost = pymysql.err.OperationalError(2013, "Lost connection to server during query (timed out)")
    lost.__context__ = TimeoutError("timed out")
    return lost


def test_a_round_trip_that_timed_out_goes_elsewhere_without_a_second_try_here() -> None:
    pool = Pool()
    tries = []

    def frozen(conn: Any) -> None:
        tries.append(conn)
        raise timed_out()

    with pytest.raises(pymysql.err.OperationalError):
        on_live_connection(pool, frozen)  # type: ignore[arg-type]
    assert (len(tries), pool.invalidated, pool.disposed) == (1, 1, 0)
