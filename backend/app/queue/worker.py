"""A queue worker: one of WORKERS processes sharing the durable pull consumer (the consumer
group) on the events stream. Its process is ``python -m app.processes.worker``.

Delivery is at least once: a message is acknowledged only after the transaction that applied
it committed, and one not acknowledged within CONSUMER_ACK_WAIT_S (a worker killed while it held
it) is delivered again, to any worker. The effect is exactly once: the counters change in the
same transaction that records the event's id (app/services/counters.py), so a second delivery
finds the id and changes nothing.

Two kinds of failure, told apart:

* **The database is unavailable** (down, failing over, a breaker open): not the message's
  fault. The worker keeps the message (telling the broker it is in progress, so it is not
  redelivered elsewhere) and retries with backoff; no delivery attempt is spent.
* **The message cannot be applied** (not an event it knows, bad data): it is refused with a
  delay and delivered again, and after CONSUMER_MAX_DELIVER deliveries it is published to the
  dead-letter stream (``deadletter.<subject>``, with the reason in a header) and terminated.
  The others keep flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout

from app.config import Settings
from app.errors import BreakerOpen, DatabaseUnavailable, Saturated
from app.messaging import broker, events
from app.messaging.broker import BROKER_ERRORS
from app.messaging.events import APPLIED_SUBJECT, SUBJECT_PREFIX
from app.queue import metrics
from app.services.counters import apply_event, counts, forget_applied
from app.services.units import Units

log = logging.getLogger("worker")
UNAVAILABLE = (DatabaseUnavailable, BreakerOpen, Saturated)
LAG_EVERY_S = 2.0
FORGET_EVERY_S = 60.0
# A refused message comes back after this many seconds times its delivery count.
REDELIVERY_STEP_S = 0.1


class Stopping(Exception):
    """The worker was asked to stop while it held a message."""


class Worker:
    """One worker process (see the module docstring)."""

    def __init__(self, settings: Settings, units: Units) -> None:
        self.settings, self.units = settings, units
        self.nc: Client | None = None
        self.subscription: Any = None
        self.stopping = asyncio.Event()
        self.failures = 0
        self.last_lag = 0.0
        self.last_forget = 0.0

    async def connect(self) -> Any:
        """The pull subscription bound to the durable consumer (made on first use)."""
        if self.nc is None or self.nc.is_closed:
            self.nc = await broker.connect(self.settings, self.settings.process_name)
            self.subscription = None
        if self.subscription is None:
            js = self.nc.jetstream()
            await broker.streams_exist(js, self.settings)  # the relays define them
            self.subscription = await js.pull_subscribe(
                SUBJECT_PREFIX + ">",
                durable=self.settings.consumer_name,
                stream=self.settings.events_stream,
                config=broker.consumer(self.settings),
            )
        return self.subscription

    async def run(self) -> None:
        """Fetch and handle batches until SIGTERM; broker failures back off and reconnect."""
        while not self.stopping.is_set():
            try:
                subscription = await self.connect()
                try:
                    batch = await subscription.fetch(
                        self.settings.consumer_batch, timeout=broker.FETCH_WAIT_S
                    )
                except NatsTimeout:
                    batch = []
                for message in batch:
                    await self.handle(message)
                await self.report_lag(subscription)
                self.failures = 0
            except Stopping:
                break
            except BROKER_ERRORS as error:
                if self.failures == 0:
                    log.warning("worker: broker unavailable", extra={"error": repr(error)[:200]})
                self.failures += 1
                self.subscription = None
                await self.pause(broker.backoff(self.failures, self.settings.relay_backoff_max_s))
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def handle(self, message: Msg) -> None:
        """Apply one message and acknowledge it; refuse it, or dead-letter it at its last try."""
        try:
            event = events.parse(message.data)
            if not counts(event):  # nothing to count: no transaction, no applied id to keep
                await message.ack()
                metrics.APPLIED.labels("not_counted").inc()
                return
            changed = await self.apply(event, message)
        except (Stopping, *BROKER_ERRORS):
            raise
        except Exception as error:  # the message's own failure: it is retried, then set aside
            await self.refuse(message, error)
            return
        await message.ack()
        metrics.APPLIED.labels("applied" if changed else "duplicate").inc()
        if changed and event.occurred_at is not None:
            metrics.APPLY_AGE.observe((datetime.now(UTC) - event.occurred_at).total_seconds())
        if self.nc is not None:  # the edge purgers' nudge (events.APPLIED_SUBJECT)
            with contextlib.suppress(*BROKER_ERRORS):
                await self.nc.publish(
                    APPLIED_SUBJECT, str(message.metadata.sequence.stream).encode()
                )

    async def apply(self, event: events.Received, message: Msg) -> bool:
        """Apply EVENT, waiting out a database outage with the message held (in progress)."""
        attempt = 0
        while True:
            try:
                return await asyncio.to_thread(apply_event, self.units, event)
            except UNAVAILABLE as error:
                if self.stopping.is_set():
                    await message.nak()
                    raise Stopping from error
                attempt += 1
                if attempt == 1:
                    log.warning("worker: database unavailable", extra={"error": str(error)})
                await message.in_progress()
                await self.pause(broker.backoff(attempt, self.settings.relay_backoff_max_s))

    async def refuse(self, message: Msg, error: BaseException) -> None:
        """Deliver MESSAGE again later, or, at its last delivery, to the dead-letter stream."""
        delivered = message.metadata.num_delivered
        metrics.APPLIED.labels("failed").inc()
        if delivered < self.settings.consumer_max_deliver:
            await message.nak(delay=REDELIVERY_STEP_S * delivered)
            return
        assert self.nc is not None
        await self.nc.jetstream().publish(
            broker.DEAD_LETTER_PREFIX + message.subject,
            message.data,
            headers={
                "Nats-Msg-Id": f"dead:{message.metadata.sequence.stream}",
                "Dead-Letter-Reason": repr(error)[:500],
                "Dead-Letter-Deliveries": str(delivered),
                "Dead-Letter-Stream-Sequence": str(message.metadata.sequence.stream),
            },
        )
        await message.term()
        metrics.DEAD_LETTERED.inc()
        log.error(
            "worker: dead-lettered a message",
            extra={"sequence": message.metadata.sequence.stream, "error": repr(error)[:200]},
        )

    async def report_lag(self, subscription: Any) -> None:
        """Now and then: the consumer's lag (pending) and unacknowledged count, for the metrics;
        more rarely, forget applied event ids older than the stream keeps events."""
        now = asyncio.get_running_loop().time()
        if now - self.last_lag < LAG_EVERY_S:
            return
        self.last_lag = now
        if now - self.last_forget >= FORGET_EVERY_S:
            self.last_forget = now
            with contextlib.suppress(*UNAVAILABLE):  # next time, then
                await asyncio.to_thread(forget_applied, self.units, self.settings.events_max_age_s)
        info = await subscription.consumer_info()
        metrics.CONSUMER_PENDING.set(info.num_pending or 0)
        metrics.CONSUMER_ACK_PENDING.set(info.num_ack_pending or 0)

    async def pause(self, seconds: float) -> None:
        """Sleep SECONDS, or less when asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
