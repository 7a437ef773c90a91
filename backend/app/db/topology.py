"""Which node is the primary: the one member of the topology that is not read-only.

Every node starts read-only, and only mysql/setup-replication.sh or mysql/failover.sh opens one,
fencing every other first (docs/replication.md). So the databases themselves say which node takes
writes, and every worker of every API replica reads that same answer from them: nothing to edit,
no restart. The members are the configured nodes, ``DB_PRIMARY`` first and then ``DB_REPLICAS``;
a member serving reads is named ``replica-N`` by its place in that list (``replica-0`` is the
configured primary, serving as a replica after a failover), and the one that takes writes is
``primary``.

A worker looks again when something suggests the primary moved: a write refused as read-only, the
primary's breaker refusing a write, a replica that polls as writable (a promoted one), and every
``TOPOLOGY_CHECK_INTERVAL_S``. It follows only an unambiguous answer. None writable (the primary
down and nobody promoted yet) leaves it where it is; a node found read-only still refuses every
write by itself. Two writable members happen when a primary frozen through a failover (a paused
VM: it could not be fenced) wakes up: then the one with the higher epoch is the primary. failover.sh
writes each promotion's epoch on the promoted node before it takes writes, so the woken node holds
an older one; it takes no write from any process that finds the primary here (the API's workers,
the heartbeat, the relays, the CLI), and ``make up`` makes it a replica. Two writable members with
the same epoch leave every writer where it is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from app.db.connections import query_once

log = logging.getLogger(__name__)
READ_ONLY_SQL = "SELECT @@read_only AS read_only"
EPOCH_SQL = "SELECT epoch FROM primary_epoch WHERE id = 1"


def replica_name(index: int) -> str:
    """The name of member INDEX while it serves reads."""
    return f"replica-{index}"


def writable(probes: dict[str, Engine]) -> list[str]:
    """The members (addresses) that answer and are not read-only."""
    found = []
    for address, engine in probes.items():
        row = query_once(engine, READ_ONLY_SQL, ())
        if row is not None and not int(row["read_only"]):
            found.append(address)
    return found


def epoch(engine: Engine) -> int | None:
    """The promotion epoch member ENGINE holds (0 before any failover); None when it cannot say."""
    row = query_once(engine, EPOCH_SQL, ())
    return None if row is None else int(row["epoch"])


def current_primary(probes: dict[str, Engine]) -> tuple[str | None, list[str]]:
    """(the member that takes writes, or None when none or no single one can be told; every
    writable member). Of several writable members, the one with the highest epoch, once each of
    them has said its epoch: one that could not (a timeout) may hold the newest."""
    found = writable(probes)
    if len(found) <= 1:
        return (found[0] if found else None), found
    known = {a: e for a in found if (e := epoch(probes[a])) is not None}
    if len(known) < len(found):
        return None, found
    newest = [a for a, e in known.items() if e == max(known.values())]
    return (newest[0] if len(newest) == 1 else None), found


class Topology:
    """Finds the primary among the members and calls FOLLOW(address) when it moved."""

    def __init__(
        self,
        probes: dict[str, Engine],
        current: str,
        follow: Callable[[str], None],
        interval_s: float,
    ) -> None:
        """PROBES: a small engine per member address; CURRENT: the primary to start from."""
        self.probes, self.current, self.follow = probes, current, follow
        self.interval_s = interval_s
        self.ambiguous: list[str] = []  # two writable members, found by the last check
        self._gave_up: dict[str, float] = {}  # member -> when a wait for a move away ended
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._started = False

    def check(self) -> str:
        """Look now; follow the one writable member if it is not the current primary."""
        with self._lock:
            primary, found = current_primary(self.probes)
            self.ambiguous = found if len(found) > 1 else []
            if len(found) > 1:
                log.error(
                    "more than one writable database node",
                    extra={"nodes": found, "following": primary},
                )
            if primary is not None and primary != self.current:
                log.warning("primary moved", extra={"from": self.current, "to": primary})
                self.follow(primary)
                self.current = primary
            return self.current

    def wait_for_move(self, away_from: str, timeout_s: float) -> bool:
        """Check until the primary is another member than AWAY_FROM, for up to TIMEOUT_S.

        A wait that found no new primary is not repeated for TIMEOUT_S: while a node stays fenced
        and nobody is promoted, writes fail fast instead of each holding a worker for the wait.
        """
        if time.monotonic() - self._gave_up.get(away_from, -timeout_s) < timeout_s:
            return self.check() != away_from
        deadline = time.monotonic() + timeout_s
        while True:
            if self.check() != away_from:
                return True
            if time.monotonic() >= deadline:
                self._gave_up[away_from] = time.monotonic()
                return False
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))

    def wake(self) -> None:
        """Ask the background thread to look now."""
        self._wake.set()

    def start(self) -> None:
        """Check once before returning, and then on every wake() or interval, in a thread of its
        own. The first check is not left to the thread: a process starting while a woken former
        primary is writable (the configured one, where CURRENT starts) would write there until
        the thread had looked."""
        with self._lock:
            if self._started:
                return
            self._started = True
        try:
            self.check()
        except Exception:  # the members down: the thread looks again
            log.exception("topology check failed")
        threading.Thread(target=self._run, name="topology", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # a check must never end the thread
                log.exception("topology check failed")
            self._wake.wait(self.interval_s if self.interval_s > 0 else None)
            self._wake.clear()
