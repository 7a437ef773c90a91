"""Ejecting and re-admitting replicas: at once on trouble, only after a calm spell on recovery."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from app.db.lag import (
    LagPolicy,
    Observation,
    PrimaryView,
    ReplicaState,
    heartbeat_silent,
    next_state,
)
from app.db.monitor import ReplicaMonitor
from app.db.probes import PRIMARY_SQL, WAIT_SQL

POLICY = LagPolicy(eject_above_s=1.0, readmit_below_s=0.5, readmit_after_s=2.0)
HEALTHY = ReplicaState("replica-1", admitted=True)
EJECTED = ReplicaState("replica-1", admitted=False)


def lag(seconds: float) -> Observation:
    return Observation(reachable=True, replicating=True, lag_s=seconds, position="0-1-9")


@pytest.mark.parametrize(
    ("seen", "reason"),
    [
        (Observation(reachable=False, problem="unreachable: OperationalError"), "unreachable"),
        (Observation(reachable=True, problem="replication stopped (io=Yes, sql=No)"), "stopped"),
        (Observation(reachable=True, replicating=True, lag_s=None), "no lag known"),
        (lag(1.5), "lag 1.50s"),
    ],
)
def test_a_replica_in_trouble_is_ejected_at_once(seen: Observation, reason: str) -> None:
    after = next_state(HEALTHY, seen, POLICY, now=0.0)
    assert not after.admitted
    assert reason in after.reason


def test_lag_between_the_thresholds_keeps_an_admitted_replica_admitted() -> None:
    assert next_state(HEALTHY, lag(0.8), POLICY, now=0.0).admitted


def test_lag_between_the_thresholds_keeps_an_ejected_replica_out() -> None:
    state = EJECTED
    for t in range(10):
        state = next_state(state, lag(0.8), POLICY, now=float(t))
        assert not state.admitted


def test_readmission_waits_for_the_lag_to_stay_low() -> None:
    state = next_state(EJECTED, lag(0.1), POLICY, now=10.0)
    assert not state.admitted
    state = next_state(state, lag(0.1), POLICY, now=11.9)
    assert not state.admitted
    state = next_state(state, lag(0.1), POLICY, now=12.0)
    assert state.admitted


def test_a_lag_spike_restarts_the_calm_spell() -> None:
    state = next_state(EJECTED, lag(0.1), POLICY, now=0.0)
    state = next_state(state, lag(0.7), POLICY, now=1.5)
    state = next_state(state, lag(0.1), POLICY, now=2.0)
    assert not next_state(state, lag(0.1), POLICY, now=3.5).admitted
    assert next_state(state, lag(0.1), POLICY, now=4.0).admitted


def test_the_position_and_lag_are_recorded() -> None:
    after = next_state(HEALTHY, lag(0.2), POLICY, now=0.0)
    assert (after.lag_s, after.position, after.reachable) == (0.2, "0-1-9", True)


class ScriptedEngine:
    """A node that answers each statement with the row the test gives (or refuses to connect)."""

    def __init__(self, rows: dict[str, dict[str, Any]], *, up: bool = True, stale: int = 0) -> None:
        """STALE pooled connections fail as connections the server has closed."""
        self.rows, self.up, self.stale, self.asked, self.disposed = rows, up, stale, [], 0

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
        {"replica-1": replica_engine},
        POLICY,
        0,
        primary=primary_engine,
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


def test_the_copies_differing_by_more_than_the_threshold_prove_lag() -> None:
    assert not heartbeat_silent(2.5, PrimaryView("0-1-1", 1.2), POLICY)
    assert heartbeat_silent(2.5, PrimaryView("0-1-1", 1.6), POLICY)


def test_while_the_writer_beats_on_time_an_old_copy_is_lag_without_waiting() -> None:
    # A replica 0.9 s behind a beat written 0.3 s ago: ejected at once, as before, never held
    # back by a wait for its GTID.
    assert not heartbeat_silent(1.2, PrimaryView("0-1-1", 0.3), POLICY)
    assert heartbeat_silent(1.2, PrimaryView("0-1-1", 0.6), POLICY)


def test_a_second_opinion_survives_connections_closed_by_a_primary_restart() -> None:
    restarted = ScriptedEngine({PRIMARY_SQL: {"position": "0-1-9", "heartbeat_age": 2.9}}, stale=1)
    seen = opinion(restarted, replica(applies_in_time=True), old_heartbeat("0-1-9"))
    assert seen.lag_s == 0.0
    assert restarted.disposed == 1


def test_a_primary_that_keeps_failing_leaves_the_poll_standing() -> None:
    failing = ScriptedEngine({PRIMARY_SQL: {"position": "0-1-9", "heartbeat_age": 2.9}}, stale=2)
    assert opinion(failing, replica(applies_in_time=True), old_heartbeat()).lag_s == 3.0
