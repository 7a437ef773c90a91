"""The lag policy: when a replica is ejected and let back (pure functions, no database)."""

from __future__ import annotations

import pytest

from app.db.lag import (
    LagPolicy,
    Observation,
    PrimaryView,
    ReplicaState,
    heartbeat_silent,
    next_state,
)

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


def test_the_copies_differing_by_more_than_the_threshold_prove_lag() -> None:
    assert not heartbeat_silent(2.5, PrimaryView("0-1-1", 1.2), POLICY)
    assert heartbeat_silent(2.5, PrimaryView("0-1-1", 1.6), POLICY)


def test_while_the_writer_beats_on_time_an_old_copy_is_lag_without_waiting() -> None:
    # A replica 0.9 s behind a beat written 0.3 s ago: ejected at once, as before, never held
    # back by a wait for its GTID.
    assert not heartbeat_silent(1.2, PrimaryView("0-1-1", 0.3), POLICY)
    assert heartbeat_silent(1.2, PrimaryView("0-1-1", 0.6), POLICY)
