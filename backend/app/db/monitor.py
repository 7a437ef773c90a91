"""The replica monitor: one thread per replica keeps what the router knows of it up to date.

Each API worker polls every replica in a thread of its own (one per replica, so a hung replica
cannot delay news about the others); probes.py says what a poll asks, lag.py what the answer
means for reads.

The heartbeat measures lag only while its writer runs. When a replica's copy of the row looks too
old, the monitor asks the primary before ejecting: if the primary's own copy is about as old, the
writer has stopped (a crash, a restart) and says nothing about the replica, so the lag is measured
directly instead, as the time the replica takes to apply the primary's current GTID position
(waiting no longer than the eject threshold). A stopped writer thus cannot eject replicas that
are keeping up, and a replica that is behind is still ejected.

A frozen replica (a paused VM, a stopped process: its port open, nothing answering) does not fail
its poll, it holds it. So a replica whose poll has been in flight for longer than the eject
threshold counts as ejected at once, while the poll still waits (its own deadline is
DB_READ_DEADLINE_S): it cannot show a lag below the threshold, and new reads go elsewhere.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Engine

from app import metrics
from app.db.lag import (
    LagPolicy,
    Observation,
    ReplicaState,
    heartbeat_silent,
    next_state,
    writer_stalled,
)
from app.db.probes import ask_primary, observe, time_to_apply
from app.gtid import covers

log = logging.getLogger(__name__)


class ReplicaMonitor:
    """Keeps a ReplicaState per replica up to date from background polls."""

    def __init__(
        self,
        engines: dict[str, Engine],
        policy: LagPolicy,
        interval_s: float,
        primary: Engine | None = None,
        on_writable: Callable[[str], None] | None = None,
    ) -> None:
        """ENGINES are small, dedicated monitoring engines; INTERVAL_S 0 disables polling.

        PRIMARY, a small engine with short timeouts, gives second opinions on old heartbeats.
        ON_WRITABLE(name) is told when a replica polls as not read-only (it was promoted).
        """
        self.engines, self.policy, self.interval_s = engines, policy, interval_s
        self.primary, self.on_writable = primary, on_writable
        self.states = {name: ReplicaState(name) for name in engines}
        self._stopped = threading.Event()
        self._started = False
        self._lock = threading.Lock()
        self._polling_since: dict[str, float] = {}  # replica -> when its poll in flight began
        self.writer_stalled = False  # the last second opinion found the heartbeat writer stopped

    def start(self) -> None:
        """Start one polling thread per replica (once; a no-op when polling is disabled)."""
        with self._lock:
            if self._started or self.interval_s <= 0:
                return
            self._started = True
        for name in self.engines:
            threading.Thread(
                target=self._run, args=(name,), name=f"monitor-{name}", daemon=True
            ).start()

    def stop(self) -> None:
        """End the polling threads (after their current poll): the replicas changed."""
        self._stopped.set()

    def poll(self, name: str) -> ReplicaState:
        """Poll one replica now and record the new state."""
        before = self.states[name]
        started = self._polling_since[name] = time.monotonic()
        try:
            seen = observe(self.engines[name])
        finally:
            del self._polling_since[name]
        if seen.writable and self.on_writable is not None:
            self.on_writable(name)
        if seen.lag_s is not None and seen.lag_s > self.policy.eject_above_s:
            seen = self.second_opinion(name, seen)
        elif self.writer_stalled and seen.lag_s is not None:
            self.writer_stalled = False  # a fresh heartbeat copy: the writer beats again
            log.info("heartbeat writer beating again", extra={"replica": name})
        now = time.monotonic()
        after = next_state(before, seen, self.policy, now)
        self.states[name] = after
        metrics.REPLICA_POLL.labels(name).observe(now - started)
        if now - started > self.policy.eject_above_s / 2:
            # While a poll hangs, the router acts on what the previous one saw.
            log.warning("slow replica poll", extra={"replica": name, "seconds": now - started})
        metrics.REPLICA_ADMITTED.labels(name).set(int(after.admitted))
        if after.lag_s is not None:
            metrics.REPLICA_LAG.labels(name).set(after.lag_s)
        if after.admitted != before.admitted:
            log.warning(
                "replica %s",
                "admitted" if after.admitted else "ejected",
                extra={"replica": name, "reason": after.reason, "lag_s": after.lag_s},
            )
        return after

    def second_opinion(self, name: str, seen: Observation) -> Observation:
        """When SEEN has replica NAME's heartbeat too old: is it behind, or the writer stopped?

        What judge() finds, and the monitor notes whether the heartbeat writer has stalled.
        """
        judged, stalled = self.judge(name, seen)
        if stalled is not None and stalled != self.writer_stalled:
            self.writer_stalled = stalled
            if stalled:
                log.warning("heartbeat writer stalled: replica lag measured by GTID instead")
        return judged

    def judge(
        self, name: str, seen: Observation, replica: Engine | None = None
    ) -> tuple[Observation, bool | None]:
        """SEEN with the lag the router acts on, and whether the heartbeat writer has stalled
        (None when the primary was not asked). Changes no state: /readyz asks it too.

        The poll stands when the primary cannot be asked or its heartbeat is fresh; otherwise
        the lag becomes the time the replica takes to apply the primary's position (waited for on
        REPLICA, by default the monitor's own engine for NAME).
        """
        if self.primary is None or seen.lag_s is None or seen.lag_s <= self.policy.eject_above_s:
            return seen, None  # nothing to second-guess: no lag the heartbeat would eject for
        primary = ask_primary(self.primary)
        if primary is None or not heartbeat_silent(seen.lag_s, primary, self.policy):
            return seen, None
        stalled = writer_stalled(primary, self.policy)
        if covers(seen.position, primary.position):
            return replace(seen, lag_s=0.0), stalled  # it has applied all the primary has
        engine = replica or self.engines[name]
        lag = time_to_apply(engine, primary.position, self.policy.eject_above_s)
        return (seen if lag is None else replace(seen, lag_s=lag)), stalled

    def _run(self, name: str) -> None:
        while not self._stopped.is_set():
            self.poll(name)
            slept = time.monotonic()
            if self._stopped.wait(self.interval_s):
                return
            if (late := time.monotonic() - slept - self.interval_s) > self.policy.eject_above_s / 2:
                log.warning("replica poll late", extra={"replica": name, "seconds": late})

    def hung(self, name: str) -> bool:
        """Has replica NAME's poll been in flight for longer than the eject threshold?"""
        since = self._polling_since.get(name)
        return since is not None and time.monotonic() - since > self.policy.eject_above_s

    def admitted(self) -> list[str]:
        """Replicas that may serve reads now."""
        return [n for n, s in self.states.items() if s.admitted and not self.hung(n)]

    def ejected_but_reachable(self) -> list[str]:
        """Replicas out of rotation that still answer: a last resort when the primary is down."""
        return [n for n, s in self.states.items() if not s.admitted and s.reachable]
