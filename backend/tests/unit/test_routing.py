"""Which node serves a unit of work: decided per unit, replicas in turn, primary as last resort."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from app.db.routing import PRIMARY, Router


class FakeConnection:
    """Enough of a Connection for the router: a context manager with begin()."""

    def __init__(self, node: str) -> None:
        self.node = node

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def begin(self) -> FakeConnection:
        return self


class FakeEngine:
    """An engine whose connect() succeeds or fails as the test says."""

    def __init__(self, node: str, *, up: bool = True) -> None:
        self.node, self.up, self.connects = node, up, 0

    def connect(self) -> FakeConnection:
        self.connects += 1
        if not self.up:
            raise OperationalError("connect", {}, Exception(2003, "down"))
        return FakeConnection(self.node)

    def begin(self) -> FakeConnection:
        return self.connect()


def make_router(**up: bool) -> Router:
    names = [PRIMARY, "replica-1", "replica-2"]
    engines: dict[str, Any] = {
        n: FakeEngine(n, up=up.get(n.replace("-", "_"), True)) for n in names
    }
    return Router(engines)


def served_by(router: Router, times: int) -> list[str]:
    nodes = []
    for _ in range(times):
        with router.reader() as uow:
            nodes.append(uow.node)
    return nodes


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


def test_an_unreachable_replica_is_skipped_for_the_next() -> None:
    assert served_by(make_router(replica_1=False), 3) == ["replica-2"] * 3


def test_reads_fall_back_to_the_primary_when_no_replica_answers() -> None:
    assert served_by(make_router(replica_1=False, replica_2=False), 2) == [PRIMARY, PRIMARY]


def test_without_replicas_reads_use_the_primary() -> None:
    router = Router({PRIMARY: FakeEngine(PRIMARY)})  # type: ignore[dict-item]
    assert served_by(router, 2) == [PRIMARY, PRIMARY]


def test_a_read_fails_only_when_every_node_is_down() -> None:
    router = make_router(primary=False, replica_1=False, replica_2=False)
    with pytest.raises(OperationalError), router.reader():
        pass


def test_an_error_inside_the_unit_of_work_is_not_retried_elsewhere() -> None:
    router = make_router()
    with pytest.raises(ValueError, match="boom"), router.reader():
        raise ValueError("boom")
    assert sum(e.connects for e in router.engines.values()) == 1  # type: ignore[attr-defined]
