"""Replica lag policy: when a replica is ejected from reads and when it is let back (pure).

A replica is ejected at once when it is unreachable, a replication thread is not running, its
lag is unknown (no heartbeat row yet), or its lag exceeds ``eject_above_s``. It is re-admitted only
after its lag has stayed below the lower ``readmit_below_s`` for ``readmit_after_s``, so a replica
hovering around the threshold does not flap. Ejection only changes where *new* reads go: queries
already running on the replica finish normally.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.config import default


@dataclass(frozen=True)
class LagPolicy:
    """Thresholds of the hysteresis, in seconds."""

    eject_above_s: float = default("replica_lag_eject_s")
    readmit_below_s: float = default("replica_lag_readmit_s")
    readmit_after_s: float = default("replica_readmit_after_s")


@dataclass(frozen=True)
class Observation:
    """What one poll of a replica found."""

    reachable: bool
    replicating: bool = False
    lag_s: float | None = None
    position: str = ""
    problem: str = ""
    writable: bool = False  # not read-only: promoted to primary (app.db.topology)


@dataclass(frozen=True)
class ReplicaState:
    """What the router knows about one replica."""

    name: str
    admitted: bool = True
    reachable: bool = True
    lag_s: float | None = None
    position: str = ""
    reason: str = "not polled yet"
    calm_since: float | None = None


@dataclass(frozen=True)
class PrimaryView:
    """What the primary says in a second opinion."""

    position: str
    heartbeat_age: float | None


def next_state(
    state: ReplicaState, seen: Observation, policy: LagPolicy, now: float
) -> ReplicaState:
    """Apply one observation to a replica's state (pure: the policy in one place)."""
    base = replace(state, reachable=seen.reachable, lag_s=seen.lag_s, position=seen.position)
    if not seen.reachable or not seen.replicating or seen.lag_s is None:
        return replace(base, admitted=False, calm_since=None, reason=seen.problem or "no lag known")
    if seen.lag_s > policy.eject_above_s:
        return replace(base, admitted=False, calm_since=None, reason=f"lag {seen.lag_s:.2f}s")
    if state.admitted:
        return replace(base, reason="ok")
    if seen.lag_s >= policy.readmit_below_s:
        return replace(base, calm_since=None, reason=f"recovering, lag {seen.lag_s:.2f}s")
    calm_since = state.calm_since if state.calm_since is not None else now
    if now - calm_since >= policy.readmit_after_s:
        return replace(base, admitted=True, calm_since=None, reason="ok")
    return replace(base, calm_since=calm_since, reason="recovering: lag low, waiting")


def heartbeat_silent(replica_age: float, primary: PrimaryView, policy: LagPolicy) -> bool:
    """Is a replica's old heartbeat copy (REPLICA_AGE seconds) no evidence of lag?

    True only when the writer is late itself (the primary's own copy is older than the re-admit
    bound) and the replica's copy is nearly as old: the replica may hold every beat there was.
    While the writer beats on time, or when the copies differ by more than the eject threshold,
    the replica's old copy is lag, as the poll said.
    """
    if primary.heartbeat_age is None:
        return False  # no heartbeat row on the primary: nothing to compare, the poll stands
    writer_late = primary.heartbeat_age > policy.readmit_below_s
    return writer_late and replica_age - primary.heartbeat_age <= policy.eject_above_s


def writer_stalled(primary: PrimaryView, policy: LagPolicy) -> bool:
    """Has the heartbeat writer stopped (its row on the primary older than the eject bound)?"""
    return (primary.heartbeat_age or 0.0) > policy.eject_above_s
