"""Which node serves a unit of work: decided per unit, admitted replicas in turn, then fallbacks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pymysql
import pytest
from sqlalchemy.exc import OperationalError

from app.db.lag import LagPolicy
from app.db.monitor import ReplicaMonitor
from app.db.routing import PRIMARY, Nodes, Router
from app.errors import BreakerOpen, NoNodeAvailable, Saturated
from app.resilience.breaker import BreakerPolicy, CircuitBreaker, State

REPLICAS = ["replica-1", "replica-2"]


class FakeConnection:
    """Enough of a pooled DBAPI connection (and a writer's Connection) for the router."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.asked_position = False

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def begin(self) -> FakeConnection:
        return self

    def close(self) -> None:
        return None

    def invalidate(self) -> None:
        return None

    def cursor(self) -> FakeConnection:
        return self

    def execute(self, statement: Any, params: Any = None) -> FakeConnection:
        self.asked_position = "gtid_current_pos" in str(statement)
        self.engine.waits += not self.asked_position
        return self

    @property
    def description(self) -> tuple[tuple[str], ...]:
        return (("position",),) if self.asked_position else (("MASTER_GTID_WAIT",),)

    def fetchall(self) -> list[tuple[Any]]:
        if self.asked_position:
            return [(self.engine.position,)]
        return [(0 if self.engine.applies_gtid else -1,)]

    def scalar(self) -> str:
        return ""


class FakeEngine:
    """An engine whose connect() succeeds or fails as the test says."""

    def __init__(self, *, up: bool = True, applies_gtid: bool = True) -> None:
        self.up, self.applies_gtid, self.connects, self.waits = up, applies_gtid, 0, 0
        self.position = "0-1-100"  # @@gtid_current_pos

    def connect(self) -> FakeConnection:
        self.connects += 1
        if not self.up:
            raise OperationalError("connect", {}, pymysql.err.OperationalError(2003, "down"))
        return FakeConnection(self)

    raw_connection = connect


class FakeBulkhead:
    """Counts slots; full when the test says so."""

    def __init__(self, *, full: bool = False) -> None:
        self.full, self.taken, self.released = full, 0, 0

    def acquire(self) -> Any:
        if self.full:
            raise Saturated("full")
        self.taken += 1
        return self.release

    def release(self) -> None:
        self.released += 1


def make_router(
    *,
    down: tuple[str, ...] = (),
    ejected: tuple[str, ...] = (),
    lagging: tuple[str, ...] = (),
    bulkhead: FakeBulkhead | None = None,
) -> Router:
    engines = {
        n: FakeEngine(up=n not in down, applies_gtid=n not in lagging) for n in [PRIMARY, *REPLICAS]
    }
    monitor = ReplicaMonitor(dict.fromkeys(REPLICAS), LagPolicy(), interval_s=0)  # type: ignore[arg-type]
    for name in ejected:
        monitor.states[name] = replace(monitor.states[name], admitted=False)
    nodes = Nodes(writer=engines[PRIMARY], readers=engines)  # type: ignore[arg-type]
    breakers = {n: CircuitBreaker(n, BreakerPolicy(min_calls=2)) for n in engines}
    return Router(nodes, monitor, bulkhead or FakeBulkhead(), breakers, ryw_wait_s=0.005)  # type: ignore[arg-type]


def served_by(router: Router, times: int, min_gtid: str | None = None) -> list[str]:
    nodes = []
    for _ in range(times):
        node, _ = router.read(nothing, min_gtid)
        nodes.append(node)
    return nodes


def nothing(conn: Any) -> None:
    """A read that asks nothing of its connection."""


def test_reads_go_to_replicas_in_turn() -> None:
    nodes = served_by(make_router(), 4)
    assert sorted(nodes) == ["replica-1", "replica-1", "replica-2", "replica-2"]
    assert nodes[0] != nodes[1]
    assert nodes[:2] == nodes[2:]


def test_writes_always_go_to_the_primary() -> None:
    router = make_router()
    for _ in range(3):
        with router.writer() as uow:
            assert uow.node == PRIMARY


def test_an_ejected_replica_gets_no_reads() -> None:
    assert served_by(make_router(ejected=("replica-1",)), 3) == ["replica-2"] * 3


def test_an_unreachable_replica_is_skipped_for_the_next() -> None:
    assert served_by(make_router(down=("replica-2",)), 3) == ["replica-1"] * 3


def test_with_no_replica_admitted_reads_use_the_primary_through_the_bulkhead() -> None:
    bulkhead = FakeBulkhead()
    router = make_router(ejected=tuple(REPLICAS), bulkhead=bulkhead)
    assert served_by(router, 2) == [PRIMARY, PRIMARY]
    assert (bulkhead.taken, bulkhead.released) == (2, 2)


def test_a_full_bulkhead_refuses_the_read_at_once() -> None:
    router = make_router(ejected=tuple(REPLICAS), bulkhead=FakeBulkhead(full=True))
    with pytest.raises(Saturated):
        router.read(nothing)


def test_with_the_primary_down_too_an_ejected_but_reachable_replica_serves() -> None:
    router = make_router(ejected=("replica-1",), down=(PRIMARY, "replica-2"))
    assert served_by(router, 1) == ["replica-1"]


def test_a_token_read_skips_a_replica_that_has_not_applied_the_gtid() -> None:
    router = make_router(lagging=("replica-1",))
    assert served_by(router, 3, min_gtid="0-1-50") == ["replica-2"] * 3


def test_a_token_read_goes_to_the_primary_when_no_replica_has_the_gtid() -> None:
    router = make_router(lagging=tuple(REPLICAS))
    assert served_by(router, 2, min_gtid="0-1-50") == [PRIMARY, PRIMARY]


def test_a_token_read_never_answers_from_a_primary_that_lacks_the_gtid() -> None:
    # A worker that has not followed a switchover yet: the node it calls the primary is a
    # replica of the new primary by now, behind the client's write.
    router = make_router(lagging=tuple(REPLICAS))
    router.nodes.readers[PRIMARY].position = "0-1-40"  # type: ignore[attr-defined]
    with pytest.raises(NoNodeAvailable):
        router.read(nothing, "0-1-50")
    router.nodes.readers[PRIMARY].position = "0-1-50"  # type: ignore[attr-defined]
    assert served_by(router, 1, min_gtid="0-1-50") == [PRIMARY]


def test_a_known_replica_position_spares_the_gtid_wait() -> None:
    router = make_router()
    for name in REPLICAS:
        router.monitor.states[name] = replace(router.monitor.states[name], position="0-1-60")
    served_by(router, 2, min_gtid="0-1-50")
    assert sum(e.waits for e in router.nodes.readers.values()) == 0  # type: ignore[attr-defined]


def test_a_read_fails_only_when_every_node_is_down() -> None:
    router = make_router(down=(PRIMARY, *REPLICAS))
    with pytest.raises(NoNodeAvailable):
        router.read(nothing)


def test_a_read_that_lost_the_primary_mid_query_retries_on_an_ejected_replica() -> None:
    router = make_router(ejected=tuple(REPLICAS))
    node, _ = router.read(nothing, avoid={PRIMARY})
    assert node in REPLICAS


def test_an_error_inside_the_unit_of_work_is_not_retried_elsewhere() -> None:
    router = make_router()

    def boom(conn: Any) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        router.read(boom)
    assert sum(e.connects for e in router.nodes.readers.values()) == 1  # type: ignore[attr-defined]


def test_a_replica_whose_breaker_opened_is_skipped_without_a_connect() -> None:
    router = make_router(down=("replica-1",))
    for _ in range(4):  # each read tries replica-1 first at some point, fails, moves on
        router.read(nothing)
    engine = router.nodes.readers["replica-1"]
    assert router.breakers["replica-1"].state is State.OPEN
    connects = engine.connects  # type: ignore[attr-defined]
    for _ in range(4):
        assert router.read(nothing)[0] == "replica-2"
    assert engine.connects == connects  # type: ignore[attr-defined]


def test_writes_fail_at_once_while_the_primary_breaker_is_open() -> None:
    router = make_router(down=(PRIMARY,))
    for _ in range(2):
        with pytest.raises(OperationalError), router.writer():
            pass
    with pytest.raises(BreakerOpen), router.writer():
        pass


def test_a_request_error_inside_a_write_does_not_count_against_the_primary() -> None:
    router = make_router()
    for _ in range(5):
        with pytest.raises(ValueError, match="bad input"), router.writer():
            raise ValueError("bad input")
    assert router.breakers[PRIMARY].state is State.CLOSED


def test_a_write_that_waited_long_on_a_row_lock_does_not_count_as_a_slow_primary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    router = make_router()
    clock = iter(range(0, 1000, 5))  # every reading of the clock is 5 s after the last
    monkeypatch.setattr("app.db.routing.time.monotonic", lambda: float(next(clock)))
    lock_wait = OperationalError("UPDATE", {}, pymysql.err.OperationalError(1205, "timeout"))
    for _ in range(5):
        with pytest.raises(OperationalError), router.writer():
            raise lock_wait
    assert router.breakers[PRIMARY].state is State.CLOSED
    for _ in range(5):  # slow writes that succeed do count: half the window now
        with router.writer():
            pass
    assert router.breakers[PRIMARY].state is State.OPEN


def test_a_forced_open_replica_gets_no_reads_until_released() -> None:
    router = make_router()
    router.breakers["replica-1"].force(State.OPEN)
    assert {read_node(router) for _ in range(4)} == {"replica-2"}
    router.breakers["replica-1"].force(None)
    assert {read_node(router) for _ in range(4)} == {"replica-1", "replica-2"}


def test_prefer_tries_the_named_node_first() -> None:
    router = make_router()
    assert router.read(nothing, prefer=PRIMARY)[0] == PRIMARY


def read_node(router: Router) -> str:
    return router.read(nothing)[0]
