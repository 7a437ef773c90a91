"""The relay: publishes the transactional outbox to JetStream, in id order, at least once.

Its process is ``python -m app.processes.relay`` (the launcher runs RELAYS of them, compose a
service). Each loop:

1. **Lease.** One relay publishes at a time: the one holding the ``relay_lease`` row on the
   primary (taken when expired, renewed at half its length; one UPDATE decides). The others wait
   and take over within RELAY_LEASE_S of the holder's death, at once when it stopped cleanly.
2. **Publish** a batch of unpublished rows, oldest first, pipelined on one connection, each with
   its event id as the ``Nats-Msg-Id``: the stream drops a second copy of an id it stored within
   EVENTS_DUPLICATE_WINDOW_S, so a relay killed between the broker's ack and its own mark (or two
   relays overlapping after a pause longer than the lease) adds no duplicate.
3. **Mark** the rows the broker acknowledged (with R=3, once two nodes stored them). A row whose
   publish failed stays unpublished and goes in the next batch, after a backoff with jitter.

After each look at the outbox, the lease holder tells the edge purgers how long its oldest row
had waited (messaging/outbox_status.py): an edge whose purges wait in the outbox stops serving.

Writes never wait for any of this: with the broker down the outbox grows, and drains once it is
back. Published rows are purged after OUTBOX_RETENTION_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any, TypeVar

from nats.aio.client import Client
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.db.clock import utcnow
from app.db.primary import FollowedPrimary
from app.db.queries import idempotency, outbox
from app.ids import unique_hex
from app.messaging import broker, outbox_status
from app.messaging.broker import BROKER_ERRORS
from app.messaging.outbox_status import OutboxStatus
from app.messaging.wake import Wake
from app.queue import metrics

log = logging.getLogger("relay")
T = TypeVar("T")
PUBLISH_TIMEOUT_S = 2.0
PURGE_EVERY_S = 10.0
# At most this many batches of 1,000 old idempotency keys per purge (100,000 keys in 10 s).
IDEMPOTENCY_PURGE_BATCHES = 100
DEPTH_EVERY_S = 1.0


class Relay:
    """One relay process: the lease, the batches, the marks (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.holder = f"{settings.process_name}:{unique_hex()[:8]}"[:64]
        self.primary = FollowedPrimary(settings)
        self.nc: Client | None = None
        self.lease_until = 0.0  # monotonic: when this relay must renew (half the lease)
        self.held = False
        self.stopping = asyncio.Event()
        self.failures = 0
        self.last_purge = self.last_depth = 0.0
        self.wake = Wake(settings)

    async def db(self, work: Callable[[Any], T]) -> T:
        """WORK(conn) on the primary, in a thread (the event loop keeps the broker's pings)."""
        return await asyncio.to_thread(self.primary.run, work)

    async def holds_lease(self) -> bool:
        """Hold the lease, renewing it at half its length; False while another relay holds it."""
        if time.monotonic() < self.lease_until:
            return True
        held = await self.db(
            lambda conn: outbox.take_lease(conn, self.holder, self.settings.relay_lease_s)
        )
        if held != self.held:
            log.info("relay lease " + ("taken" if held else "held by another"))
        self.held = held
        metrics.LEASE_HELD.set(1 if held else 0)
        self.lease_until = time.monotonic() + self.settings.relay_lease_s / 2 if held else 0.0
        return held

    async def broker(self) -> Client:
        """The connection (made, and the streams ensured, on first use)."""
        if self.nc is None or self.nc.is_closed:
            self.nc = await broker.connect(self.settings, self.settings.process_name)
            await broker.ensure_streams(self.nc.jetstream(), self.settings)
        return self.nc

    async def publish(self, rows: list[Any]) -> list[int]:
        """Publish ROWS pipelined; the ids of the rows the broker acknowledged."""
        js = (await self.broker()).jetstream()
        started = time.perf_counter()
        acks = await asyncio.gather(
            *(
                js.publish(
                    row.subject,
                    bytes(row.payload),
                    timeout=PUBLISH_TIMEOUT_S,
                    headers={"Nats-Msg-Id": row.event_id},
                )
                for row in rows
            ),
            return_exceptions=True,
        )
        acked = []
        for row, ack in zip(rows, acks, strict=True):
            if isinstance(ack, BaseException):
                continue
            acked.append(row.id)
            metrics.PUBLISHED.labels("true" if ack.duplicate else "false").inc()
        if len(acked) < len(rows):
            failure = next(a for a in acks if isinstance(a, BaseException))
            raise PartlyPublished(acked, failure)
        metrics.PUBLISH_LATENCY.observe(time.perf_counter() - started)
        return acked

    async def once(self) -> bool:
        """One round: True when it published something (look again at once)."""
        if not await self.holds_lease():
            return False
        looked_at = time.time()
        rows = await self.db(lambda conn: outbox.unpublished(conn, self.settings.outbox_batch))
        await self.tell(rows, looked_at)
        await self.housekeeping()
        if not rows:
            return False
        try:
            acked = await self.publish(rows)
        except PartlyPublished as partly:
            done = partly.acked
            if done:
                await self.db(lambda conn: outbox.mark_published(conn, done))
            raise partly.failure from None
        await self.db(lambda conn: outbox.mark_published(conn, acked))
        return True

    async def tell(self, rows: list[Any], looked_at: float) -> None:
        """Tell the edge purgers how long the oldest of ROWS (a look at LOOKED_AT) has waited
        (messaging/outbox_status.py). A word, not a promise: one lost is one the next replaces."""
        oldest = min((row.created_at for row in rows), default=None)  # naive UTC, as stored
        since = oldest.replace(tzinfo=UTC).timestamp() if oldest is not None else looked_at
        status = OutboxStatus(looked_at, max(looked_at - since, 0.0))
        with contextlib.suppress(*BROKER_ERRORS):
            await (await self.broker()).publish(outbox_status.SUBJECT, status.payload())

    async def housekeeping(self) -> None:
        """Now and then: the outbox's depth for the metrics, and a purge of old published rows."""
        now = time.monotonic()
        if now - self.last_depth >= DEPTH_EVERY_S:
            self.last_depth = now
            count, oldest = await self.db(outbox.depth)
            metrics.OUTBOX_DEPTH.set(count)
            age = (utcnow() - oldest).total_seconds() if oldest else 0.0
            metrics.OUTBOX_OLDEST_AGE.set(max(age, 0.0))
        if now - self.last_purge >= PURGE_EVERY_S:
            self.last_purge = now
            retention = self.settings.outbox_retention_s
            await self.db(lambda conn: outbox.purge(conn, retention))
            # The stored answers of writes sent with an Idempotency-Key, in batches until none
            # is older than the retention.
            kept = self.settings.idempotency_retention_s
            for _ in range(IDEMPOTENCY_PURGE_BATCHES):
                if await self.db(lambda conn: idempotency.purge(conn, kept)) < 1000:
                    break

    async def run(self) -> None:
        """Round after round until SIGTERM; failures back off with jitter and are retried. Idle,
        a relay waits for a write's wake-up word, or its next look (the backstop)."""
        self.wake.start()
        while not self.stopping.is_set():
            try:
                await self.broker()  # connected at start: the relays define the streams
                busy = await self.once()
                self.failures = 0
            except BROKER_ERRORS as error:
                await self.failed("broker", error)
                continue
            except DBAPIError as error:
                await self.failed("database", error)
                self.lease_until = 0.0  # proven again on the (maybe new) primary
                await asyncio.to_thread(self.primary.follow)
                continue
            if not busy and self.held:  # the lease holder publishes what a write woke it for
                await self.wake.wait(self.settings.outbox_poll_interval_s, self.stopping)
            elif not busy:  # the others only look whether the lease is free, now and then
                await self.pause(self.settings.outbox_poll_interval_s)
        await self.wake.stop()
        await self.stop()

    async def failed(self, what: str, error: BaseException) -> None:
        """Log the first failure of a run of them, count it, and back off."""
        if self.failures == 0:
            log.warning(f"relay: {what} unavailable", extra={"error": repr(error)[:200]})
        metrics.PUBLISH_FAILURES.inc()
        self.failures += 1
        await self.pause(broker.backoff(self.failures, self.settings.relay_backoff_max_s))

    async def pause(self, seconds: float) -> None:
        """Sleep SECONDS, or less when asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def stop(self) -> None:
        """Give the lease up (another relay takes over at once) and close the connection."""
        if self.lease_until:
            with contextlib.suppress(DBAPIError):  # else it expires by itself
                await self.db(lambda conn: outbox.release_lease(conn, self.holder))
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()


class PartlyPublished(Exception):
    """Some rows of a batch were acknowledged (ACKED), the rest failed (FAILURE)."""

    def __init__(self, acked: list[int], failure: BaseException) -> None:
        super().__init__(f"{len(acked)} acknowledged, then {failure!r}")
        self.acked, self.failure = acked, failure
