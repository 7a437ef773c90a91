"""The replica monitor: polls, and second opinions on old heartbeats from the primary."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pymysql
import pytest
from sqlalchemy import Engine

from app.db.lag import Observation, next_state
from app.db.monitor import ReplicaMonitor
from app.db.probes import PRIMARY_SQL, WAIT_SQL
from tests.unit.db.test_lag import HEALTHY, POLICY


class ScriptedEngine:
    """A node that answers each statement with the row the test gives (or refuses to connect)."""

    def __init__(self, rows: dict[str, dict[str, Any]], *, up: bool = True, stale: int = 0) -> None:
        """STALE pooled connections fail as connections the server has closed."""
        self.rows, self.up, self.stale, self.disposed = rows, up, stale, 0
        self.asked: list[str] = []

    def raw_connection(self) -> ScriptedEngine:
        if not self.up:
            raise pymysql.err.OperationalError(2003, "down")
        return self

    def cursor(self) -> ScriptedEngine:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        if self.stale:
            self.stale -= 1
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")
        self.asked.append(sql)
        self.row = self.rows[sql]
        self.description = [(name,) for name in self.row]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(self.row.values())]

    def close(self) -> None:
        return None

    def invalidate(self) -> None:
        return None

    def dispose(self) -> None:
        self.disposed += 1


def primary(position: str, heartbeat_age: float | None, *, up: bool = True) -> ScriptedEngine:
    return ScriptedEngine(
        {PRIMARY_SQL: {"position": position, "heartbeat_age": heartbeat_age}}, up=up
    )


def replica(*, applies_in_time: bool) -> ScriptedEngine:
    return ScriptedEngine({WAIT_SQL: {"reached": 0 if applies_in_time else -1}})


def opinion(
    primary_engine: ScriptedEngine, replica_engine: ScriptedEngine, seen: Observation
) -> Observation:
    monitor = ReplicaMonitor(
        {"replica-1": cast(Engine, replica_engine)},
        POLICY,
        0,
        primary=cast(Engine, primary_engine),
    )
    return monitor.second_opinion("replica-1", seen)


def old_heartbeat(position: str = "0-1-9") -> Observation:
    return Observation(reachable=True, replicating=True, lag_s=3.0, position=position)


def test_a_stopped_heartbeat_writer_leaves_a_replica_that_has_applied_everything_admitted() -> None:
    seen = opinion(primary("0-1-9", 2.9), replica(applies_in_time=True), old_heartbeat("0-1-9"))
    assert seen.lag_s == 0.0
    assert next_state(HEALTHY, seen, POLICY, now=0.0).admitted


def test_a_stopped_heartbeat_writer_still_lets_a_replica_behind_the_primary_be_ejected() -> None:
    waiting = replica(applies_in_time=False)
    seen = opinion(primary("0-1-12", 2.9), waiting, old_heartbeat("0-1-9"))
    assert waiting.asked == [WAIT_SQL]
    assert seen.lag_s is not None
    assert seen.lag_s > POLICY.eject_above_s
    assert not next_state(HEALTHY, seen, POLICY, now=0.0).admitted


def test_a_replica_that_applies_the_primarys_position_in_time_keeps_its_place() -> None:
    seen = opinion(primary("0-1-12", 2.9), replica(applies_in_time=True), old_heartbeat("0-1-9"))
    assert seen.lag_s is not None
    assert seen.lag_s < POLICY.eject_above_s
    assert next_state(HEALTHY, seen, POLICY, now=0.0).admitted


def test_a_fresh_heartbeat_on_the_primary_confirms_the_replicas_lag() -> None:
    waiting = replica(applies_in_time=True)
    seen = opinion(primary("0-1-12", 0.1), waiting, old_heartbeat())
    assert seen.lag_s == 3.0
    assert waiting.asked == []


@pytest.mark.parametrize(
    "asked",
    [primary("0-1-12", 2.9, up=False), primary("0-1-12", None)],
    ids=["primary unreachable", "no heartbeat row on the primary"],
)
def test_without_a_word_from_the_primary_the_heartbeat_stands(asked: ScriptedEngine) -> None:
    assert opinion(asked, replica(applies_in_time=True), old_heartbeat()).lag_s == 3.0


def test_a_second_opinion_survives_connections_closed_by_a_primary_restart() -> None:
    restarted = ScriptedEngine({PRIMARY_SQL: {"position": "0-1-9", "heartbeat_age": 2.9}}, stale=1)
    seen = opinion(restarted, replica(applies_in_time=True), old_heartbeat("0-1-9"))
    assert seen.lag_s == 0.0
    assert restarted.disposed == 1


def test_a_primary_that_keeps_failing_leaves_the_poll_standing() -> None:
    failing = ScriptedEngine({PRIMARY_SQL: {"position": "0-1-9", "heartbeat_age": 2.9}}, stale=2)
    assert opinion(failing, replica(applies_in_time=True), old_heartbeat()).lag_s == 3.0


class FrozenEngine(ScriptedEngine):
    """A replica whose poll is answered only when the test lets it (a paused process)."""

    def __init__(self) -> None:
        super().__init__({})
        self.entered, self.wake = threading.Event(), threading.Event()

    def execute(self, sql: str, params: Any = None) -> None:
        self.entered.set()
        self.wake.wait(5)
        raise pymysql.err.OperationalError(2013, "Lost connection (timed out)")


def test_a_replica_whose_poll_hangs_past_the_eject_threshold_loses_its_reads_at_once() -> None:
    frozen = FrozenEngine()
    monitor = ReplicaMonitor({"replica-1": cast(Engine, frozen)}, POLICY, interval_s=0.0)
    assert monitor.admitted() == ["replica-1"]
    poll = threading.Thread(target=monitor.poll, args=("replica-1",))
    poll.start()
    assert frozen.entered.wait(5)
    assert monitor.admitted() == ["replica-1"], "a poll in flight for less than the threshold"
    time.sleep(POLICY.eject_above_s + 0.05)
    assert monitor.admitted() == []
    assert monitor.hung("replica-1")
    frozen.wake.set()
    poll.join(5)
    assert not monitor.hung("replica-1")
    assert monitor.admitted() == []
    assert not monitor.states["replica-1"].reachable
