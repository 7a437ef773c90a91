"""Which member is the primary: the one that is not read-only, followed only when unambiguous."""

from __future__ import annotations

import time
from typing import Any

import pymysql
import pytest
from sqlalchemy.exc import OperationalError

from app.db import topology
from app.db.errors import is_node_failure, is_transient
from app.db.lag import LagPolicy
from app.db.monitor import ReplicaMonitor
from app.db.routing import PRIMARY, Nodes
from app.db.topology import Topology
from tests.unit.db.test_routing import FakeEngine, make_router


class Members:
    """Stands in for the read_only probes: each member's answer, or None when it is down."""

    def __init__(self, **read_only: int | None) -> None:
        self.read_only = {address.replace("_", ":"): v for address, v in read_only.items()}
        self.epochs: dict[str, int] = {}  # members that can say their epoch

    def writable(self, probes: dict[str, Any]) -> list[str]:
        return [a for a in probes if self.read_only.get(a) == 0]

    def epoch(self, address: str) -> int | None:
        return self.epochs.get(address)


@pytest.fixture
def members(monkeypatch: pytest.MonkeyPatch) -> Members:
    found = Members(db1_1=0, db2_1=1, db3_1=1)
    monkeypatch.setattr(topology, "writable", found.writable)
    monkeypatch.setattr(topology, "epoch", found.epoch)
    return found


def make_topology(followed: list[str]) -> Topology:
    probes: dict[str, Any] = {a: a for a in ["db1:1", "db2:1", "db3:1"]}  # the fakes take names
    return Topology(probes, "db1:1", followed.append, interval_s=0)


def test_the_one_writable_member_is_followed_once(members: Members) -> None:
    followed: list[str] = []
    top = make_topology(followed)
    assert top.check() == "db1:1"
    assert followed == []
    members.read_only.update({"db1:1": None, "db2:1": 0})  # the primary lost, db2 promoted
    assert top.check() == "db2:1"
    assert top.check() == "db2:1"
    assert followed == ["db2:1"]


def test_no_writable_member_keeps_the_primary_it_has(members: Members) -> None:
    followed: list[str] = []
    top = make_topology(followed)
    members.read_only.update({"db1:1": None})  # down, nobody promoted yet
    assert top.check() == "db1:1"
    assert followed == []


def test_two_writable_members_are_not_followed_and_are_named(members: Members) -> None:
    followed: list[str] = []
    top = make_topology(followed)
    members.read_only.update({"db2:1": 0})  # a fence that failed
    assert top.check() == "db1:1"
    assert followed == []
    assert top.ambiguous == ["db1:1", "db2:1"]
    members.read_only.update({"db1:1": 1})
    assert top.check() == "db2:1"
    assert top.ambiguous == []


def test_of_two_writable_members_the_newer_epoch_is_followed_and_the_woken_one_never(
    members: Members,
) -> None:
    followed: list[str] = []
    top = make_topology(followed)
    # The primary froze, db2 was promoted (epoch 1, written on it before it took writes), and
    # the old primary woke up writable, holding epoch 0.
    members.read_only.update({"db2:1": 0})
    members.epochs.update({"db1:1": 0, "db2:1": 1})
    assert top.check() == "db2:1"
    assert followed == ["db2:1"]
    assert top.ambiguous == ["db1:1", "db2:1"]
    assert top.check() == "db2:1"
    assert followed == ["db2:1"]


def test_two_writable_members_of_one_epoch_are_not_followed(members: Members) -> None:
    followed: list[str] = []
    top = make_topology(followed)
    members.read_only.update({"db2:1": 0})
    members.epochs.update({"db1:1": 3, "db2:1": 3})
    assert top.check() == "db1:1"
    assert followed == []


def test_of_two_writable_members_none_is_followed_while_one_cannot_say_its_epoch(
    members: Members,
) -> None:
    followed: list[str] = []
    top = make_topology(followed)
    top.current = "db2:1"  # following the promoted member, epoch 1
    members.read_only.update({"db1:1": 0, "db2:1": 0})  # the old primary woke up writable
    members.epochs.update({"db1:1": 0})  # and the promoted member's answer timed out
    assert top.check() == "db2:1"
    assert followed == []
    members.epochs.update({"db2:1": 1})
    assert top.check() == "db2:1"
    assert followed == []


def test_a_starting_process_finds_the_primary_before_it_serves_anything(
    members: Members,
) -> None:
    followed: list[str] = []
    probes: dict[str, Any] = {a: a for a in ["db1:1", "db2:1"]}
    top = Topology(probes, "db1:1", followed.append, interval_s=60)
    # The configured primary (db1) woke up writable after a failover to db2.
    members.read_only.update({"db2:1": 0})
    members.epochs.update({"db1:1": 0, "db2:1": 1})
    top.start()
    assert top.current == "db2:1"
    assert followed == ["db2:1"]


def test_a_wait_for_a_move_ends_when_another_member_takes_writes(members: Members) -> None:
    top = make_topology([])
    assert top.wait_for_move("db1:1", timeout_s=0.05) is False
    members.read_only.update({"db1:1": 1, "db3:1": 0})
    assert top.wait_for_move("db1:1", timeout_s=1) is True
    assert top.current == "db3:1"


def test_a_switch_moves_writes_and_reads_and_resets_the_primary_breaker() -> None:
    router = make_router()
    old_monitor = router.monitor
    for _ in range(3):
        router.breakers[PRIMARY].record(ok=False)
    new_engines = {PRIMARY: FakeEngine(), "replica-0": FakeEngine(), "replica-2": FakeEngine()}
    monitor = ReplicaMonitor(dict.fromkeys(["replica-0", "replica-2"]), LagPolicy(), interval_s=0)  # type: ignore[arg-type]
    nodes = Nodes(writer=new_engines[PRIMARY], readers=new_engines)  # type: ignore[arg-type]
    router.breakers["replica-0"] = router.breakers["replica-1"]
    router.switch("db2:1", nodes, monitor)
    assert old_monitor._stopped.is_set()
    assert router.replica_names == ["replica-0", "replica-2"]
    assert router.breakers[PRIMARY].allow()
    with router.writer() as uow:
        assert uow.node == PRIMARY
    assert new_engines[PRIMARY].connects == 1
    assert {router.read(lambda conn: 1)[0] for _ in range(4)} == {"replica-0", "replica-2"}


class ReadOnlyEngine(FakeEngine):
    """A primary that was fenced: every write is refused as read-only."""

    def connect(self) -> Any:
        raise OperationalError("insert", {}, pymysql.err.OperationalError(1290, "read-only"))


def test_a_write_refused_as_read_only_waits_for_the_new_primary(members: Members) -> None:
    router = make_router()
    router.view = type(router.view)(
        Nodes(writer=ReadOnlyEngine(), readers=router.nodes.readers),  # type: ignore[arg-type]
        router.monitor,
        "db1:1",
    )
    router.topology_wait_s = 1
    followed: list[str] = []
    router.topology = make_topology(followed)
    members.read_only.update({"db1:1": 1, "db2:1": 0})  # switchover done meanwhile
    with pytest.raises(OperationalError), router.writer():
        pass
    assert followed == ["db2:1"]
    assert router.breakers[PRIMARY].allow()  # a fenced node is no failed node


def test_a_read_only_refusal_is_safe_to_run_again_for_writes() -> None:
    refused = OperationalError("insert", {}, pymysql.err.OperationalError(1290, "read-only"))
    assert is_transient(refused, write=True)
    assert not is_node_failure(refused)


def test_a_wait_that_found_no_new_primary_is_not_repeated_at_once(members: Members) -> None:
    top = make_topology([])
    members.read_only.update({"db1:1": 1})  # fenced, nobody promoted
    started = time.monotonic()
    assert top.wait_for_move("db1:1", timeout_s=0.3) is False
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert top.wait_for_move("db1:1", timeout_s=0.3) is False
    assert time.monotonic() - started < 0.1  # writes fail fast meanwhile
