"""The edge purger: one per nginx instance. It follows the events stream with a durable consumer
of its own and drops every edge copy an event makes wrong (docs/caching.md, "The edge cache").
Its process is ``python -m app.processes.edge_purger``.

* **Exact purges, from the events.** A write's event names the paths it changed (paths.py);
  each copy is purged at once (its file deleted: nginx.py). A user's derived fields
  (post_count, last_post_at) change when a queue worker applies the event, so that path is
  purged after the worker's commit: at once when the worker names the event on
  events.APPLIED_SUBJECT (a nudge, at most once), else once the workers' consumer's ack floor
  passed the event's sequence (asked FLOOR_AFTER_S after the event came, and then each turn).
* **Every purge three times.** A refill that read the old version before the write, and reached
  nginx after the first purge, would otherwise be kept for the long TTL. Each path is purged
  again EDGE_PURGE_SOON_S later (most such refills are a few ms behind), and EDGE_PURGE_REPEAT_S
  later, longer than nginx lets a refill take (the edge location's timeouts).
* **A position that survives.** A message is acknowledged only after its last purge, so a
  restarted purger replays every purge it had not finished (it follows again only once the
  broker gave it back every message the previous process held). A new consumer starts from the
  events of the last EDGE_CACHE_TTL_S: older copies have expired anyway.
* **Behind, the edge steps aside.** nginx serves copies only while the purger's lease lasts
  (nginx.py's switch, renewed at every turn of the loop, so a killed or frozen purger loses it
  within EDGE_LEASE_S): it stops at once when the broker connection drops or a call to it fails,
  when a purge fails, when a write took longer than EDGE_PURGE_MAX_LAG_S to be purged, or when
  an event may have waited longer than that in the outbox, where no purger sees it (the relays'
  word: outbox.py; none heard counts as forever). Reads then go to the API (Redis caches them).
  It serves again once nothing waits in the stream or the outbox and every message a previous
  process held came back, after **every copy was dropped**: what changed while the purger could
  not follow is not known here, so nothing stored before is trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NotFoundError

from app.edge import metrics
from app.edge.config import PurgerSettings
from app.edge.holding import Acked, Held, Recent, ack_wait_s, consumer_config, observe_lag
from app.edge.nginx import Edge, PurgeFailed
from app.edge.outbox import OutboxWatch
from app.edge.paths import stale_paths
from app.messaging import broker, events, outbox_status
from app.messaging.broker import BROKER_ERRORS
from app.messaging.events import APPLIED_SUBJECT

log = logging.getLogger("edge-purger")
BATCH = 256
# The broker's answer about this purger's position: a broker that takes longer is not followed.
CHECK_TIMEOUT_S = 1.0
# While purges are due (repeats, derived fields), the loop turns at least this often.
REPEAT_WAIT_S = 0.25
# A derived field's purge that no worker's nudge brought this long after its event came asks the
# workers' ack floor (the nudge was lost, or no worker said it).
FLOOR_AFTER_S = 0.5
# How many applied sequences to remember that came before their own event did.
APPLIED_KEPT = 10000


class Purger:
    """One purger process (see the module docstring)."""

    def __init__(
        self, settings: PurgerSettings, edge: Edge, later: Callable[..., object] | None = None
    ) -> None:
        """LATER(delay, fn, *args) runs fn later (the event loop's call_later by default)."""
        self.settings, self.edge = settings, edge
        self.later = later or (lambda *call: asyncio.get_running_loop().call_later(*call))
        self.stopping = asyncio.Event()
        self.nc: Client | None = None
        self.subscription: Any = None
        self.held: list[Held] = []
        self.acked = Acked(ack_wait_s(settings))
        self.behind = True
        self.failures = 0
        self.outbox = OutboxWatch()
        self.last_check = 0.0
        self.leased_at = 0.0
        # Sequences the workers said they applied before this purger held their event.
        self.applied = Recent(APPLIED_KEPT)

    async def run(self) -> None:
        """Follow the stream until SIGTERM; on any failure, step the edge aside and retry."""
        self.step_aside("starting")
        while not self.stopping.is_set():
            try:
                subscription = await self.connect()
                for message in await self.fetch(subscription):
                    self.handle(message)
                await self.settle()
                await self.check()
                self.renew()
                self.failures = 0
            except (*BROKER_ERRORS, PurgeFailed) as error:
                self.step_aside(repr(error)[:200])
                self.failures += 1
                self.subscription = None
                await self.pause(broker.backoff(self.failures, 1.0))
        self.step_aside("stopping")
        if self.nc is not None and not self.nc.is_closed:
            # What this process still held goes back to the broker at once: the next process
            # gets it now instead of after the ack wait, and follows sooner.
            for held in self.held:
                with contextlib.suppress(*BROKER_ERRORS):
                    await held.message.nak()
            await self.nc.close()

    async def connect(self) -> Any:
        """The pull subscription bound to this edge's durable consumer (made if missing)."""
        if self.nc is None or self.nc.is_closed:
            self.nc = await broker.connect(
                self.settings, self.settings.process_name, disconnected_cb=self.disconnected
            )
            await self.nc.subscribe(APPLIED_SUBJECT, cb=self.on_applied)
            await self.nc.subscribe(outbox_status.SUBJECT, cb=self.outbox.heard)
            self.subscription = None
            self.held.clear()  # unacknowledged on a closed connection: delivered again
        if self.subscription is None:
            js = self.nc.jetstream()
            stream, durable = self.settings.events_stream, self.settings.durable
            try:
                await js.consumer_info(stream, durable)
            except NotFoundError:
                await js.add_consumer(stream, consumer_config(self.settings))
                log.info("new consumer %s: events of the last TTL replayed", durable)
            self.subscription = await js.pull_subscribe_bind(durable, stream)
        return self.subscription

    async def fetch(self, subscription: Any) -> list[Msg]:
        """The next messages, waiting briefly while purges are due, longer when idle (a message
        that arrives meanwhile is returned at once)."""
        wait = REPEAT_WAIT_S if self.held else self.settings.edge_purge_check_s
        try:
            return list(await subscription.fetch(BATCH, timeout=wait))
        except (TimeoutError, NatsTimeout):  # nothing came: a broker that is gone is
            return []  # told by check()'s question, which does raise

    def handle(self, message: Msg) -> None:
        """Purge what MESSAGE's event changed now; hold it for the rest."""
        try:
            event = events.parse(message.data)
        except events.BadEvent:
            self.held.append(Held(message, message.metadata.sequence.stream, (), ()))
            return
        stale = stale_paths(event)
        for path in stale.now:
            self.purge(path, "first")
        lag = observe_lag(event.occurred_at, "write") if stale.now else None
        if lag is not None and lag > self.settings.edge_purge_max_lag_s and not self.behind:
            self.step_aside(f"a write waited {lag:.1f} s for its purge")
        seq = message.metadata.sequence.stream
        due = time.monotonic() + self.settings.edge_purge_repeat_s
        held = Held(message, seq, stale.now, stale.after_applied, event.occurred_at, due)
        self.held.append(held)
        metrics.POSITION.set(seq)
        if held.after_applied and seq in self.applied:  # a worker was quicker than this
            self.purge_derived(held, "early")

    async def on_applied(self, message: Msg) -> None:
        """A worker's nudge: it applied the event at this stream sequence."""
        try:
            seq = int(message.data)
        except ValueError:
            return
        held = next((h for h in self.held if h.seq == seq and h.after_applied), None)
        if held is None:  # not here yet (or none to purge): remember it for a while
            self.applied.add(seq)
            return
        try:
            self.purge_derived(held, "nudge")
        except PurgeFailed as error:  # the loop's floor look tries again
            self.step_aside(repr(error)[:200])

    def purge_derived(self, held: Held, via: str) -> None:
        """Drop the copies of what a worker derived from HELD's event (it has applied it; VIA:
        what said so)."""
        metrics.DERIVED.labels(via).inc()
        for path in held.after_applied:
            self.purge(path, "first")
        observe_lag(held.occurred_at, "derived")
        held.purged, held.after_applied = held.purged + held.after_applied, ()
        held.due = time.monotonic() + self.settings.edge_purge_repeat_s

    def purge(self, path: str, kind: str) -> None:
        """Drop nginx's copy of PATH (KIND: first or repeat), counted."""
        try:
            dropped = self.edge.purge(path)
        except PurgeFailed:
            metrics.PURGES.labels("failed").inc()
            raise
        outcome = "repeat" if kind == "repeat" else ("dropped" if dropped else "absent")
        metrics.PURGES.labels(outcome).inc()
        if kind == "first":
            self.later(self.settings.edge_purge_soon_s, self.purge_soon, path)

    def purge_soon(self, path: str) -> None:
        """The early repeat of a first purge (a failure steps the edge aside, as any purge's)."""
        try:
            self.purge(path, "repeat")
        except PurgeFailed as error:
            self.step_aside(repr(error)[:200])

    async def settle(self) -> None:
        """Purge the derived paths the workers have applied, repeat the purges that are due,
        acknowledge what is done; keep the rest from being redelivered."""
        if not self.held:
            return
        now = time.monotonic()
        unnudged = any(h.after_applied and now - h.received > FLOOR_AFTER_S for h in self.held)
        floor = await self.workers_floor() if unnudged else 0
        for held in list(self.held):
            if held.after_applied and floor >= held.seq:
                self.purge_derived(held, "floor")
            elif not held.after_applied and now >= held.due:
                for path in held.purged:
                    self.purge(path, "repeat")
                await self.acked.ack(held.message)
                self.held.remove(held)
            elif now - held.touched > ack_wait_s(self.settings) / 2:
                await held.message.in_progress()
                held.touched = now

    async def workers_floor(self) -> int:
        """The last stream sequence up to which the workers acknowledged every event (0: none
        yet, or no workers' consumer)."""
        assert self.nc is not None
        js = self.nc.jetstream()
        try:
            info = await js.consumer_info(self.settings.events_stream, self.settings.consumer_name)
        except NotFoundError:
            return 0
        return int(info.ack_floor.stream_seq) if info.ack_floor else 0

    async def check(self) -> None:
        """Step aside when an event may wait in the outbox past the bound; now and then ask the
        broker how far behind this purger is; follow once caught up, the outbox's wait too."""
        waited, bound = self.outbox.waited_s(), self.settings.edge_purge_max_lag_s
        if waited > bound and not self.behind:
            self.step_aside(f"an event may have waited {waited:.1f} s in the outbox")
        now = time.monotonic()
        if now - self.last_check < self.settings.edge_purge_check_s:
            return
        self.last_check = now
        assert self.nc is not None
        info = await self.nc.jetstream().consumer_info(
            self.settings.events_stream, self.settings.durable, timeout=CHECK_TIMEOUT_S
        )
        pending = info.num_pending or 0
        metrics.PENDING.set(pending)
        # Messages delivered and not held here were a previous process's, unfinished: caught up
        # only once they came back (after the ack wait) and were purged again.
        orphaned = (info.num_ack_pending or 0) > len(self.held)
        if orphaned and self.behind:  # some may be this process's own acks, lost (Acked)
            await self.acked.again(self.nc)
        if pending == 0 and not orphaned and self.behind and waited <= bound:
            dropped = await asyncio.to_thread(self.edge.purge_all)
            self.behind = False
            self.edge.serve(True, self.settings.edge_lease_s)
            self.leased_at = time.monotonic()
            metrics.FOLLOWING.set(1)
            log.info("following the stream: the edge serves again", extra={"dropped": dropped})

    def renew(self) -> None:
        """Renew the lease that lets nginx serve copies, unless it ran out meanwhile (this
        process was stopped or starved: nginx has sent reads to the API since, and what changed
        meanwhile is not purged yet): then step aside and catch up first."""
        if self.behind:
            return
        now = time.monotonic()
        if now - self.leased_at > self.settings.edge_lease_s:
            self.step_aside(f"the lease ran out ({now - self.leased_at:.1f} s since renewed)")
            return
        self.edge.serve(True, self.settings.edge_lease_s)
        self.leased_at = now

    async def disconnected(self) -> None:
        """nats-py's word that the connection dropped (it reconnects by itself meanwhile)."""
        self.step_aside("the broker connection dropped")

    def step_aside(self, why: str) -> None:
        """Make nginx send every read to the API until this purger is caught up again."""
        if not self.behind:
            log.warning("behind the stream: the edge serves no copy", extra={"why": why})
        self.behind = True
        self.edge.serve(False)
        metrics.FOLLOWING.set(0)

    async def pause(self, seconds: float) -> None:
        """Sleep SECONDS, or less when asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
