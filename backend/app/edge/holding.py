"""What the edge purger holds, and where it holds it: a message per event whose purges are not
all done (acknowledged only once they are, so a restarted purger replays them), the durable
consumer that keeps that position, and the measure of a purge's lag behind its write."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from app.edge import metrics
from app.edge.config import PurgerSettings
from app.messaging.events import SUBJECT_PREFIX


@dataclass
class Held:
    """A message whose purges are not all done: acknowledged once they are."""

    message: Msg
    seq: int
    purged: tuple[str, ...]
    after_applied: tuple[str, ...]
    occurred_at: datetime | None = None
    due: float = 0.0  # when the repeat is due (monotonic), once after_applied is empty
    touched: float = field(default_factory=time.monotonic)
    received: float = field(default_factory=time.monotonic)


class Acked:
    """The messages this purger acknowledged within the last ack wait (their reply subjects).

    An ack sent while the broker is away, or before the consumer has a leader again, is lost: the
    broker counts the message pending until the ack wait ends, and the purger, which finished its
    purges, waits that long before it follows again ("every message held came back"). Acking those
    again spares the wait after a broker restart; it is harmless: an ack of a message acked
    already, or delivered again since (its purges were done before the first ack), changes
    nothing else."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self.replies: deque[tuple[float, str]] = deque()

    async def ack(self, message: Msg) -> None:
        """Acknowledge MESSAGE, and remember it."""
        await message.ack()
        if message.reply:
            self.replies.append((time.monotonic(), message.reply))
        while self.replies and time.monotonic() - self.replies[0][0] > self.keep_s:
            self.replies.popleft()

    async def again(self, nc: Client) -> int:
        """Send the acks of the last KEEP_S again; how many."""
        for _, reply in self.replies:
            await nc.publish(reply)
        return len(self.replies)


class Recent:
    """The last KEEP stream sequences added (a bounded memory of them)."""

    def __init__(self, keep: int) -> None:
        self.keep, self.seqs, self.order = keep, set[int](), deque[int]()

    def add(self, seq: int) -> None:
        self.seqs.add(seq)
        self.order.append(seq)
        if len(self.order) > self.keep:
            self.seqs.discard(self.order.popleft())

    def __contains__(self, seq: object) -> bool:
        return seq in self.seqs


def observe_lag(occurred_at: datetime | None, kind: str) -> float | None:
    """Count the time from a write (its event's occurred_at) to its purge of KIND (write: what
    the write changed; derived: what a worker derived from it); the lag, when known."""
    if occurred_at is None:
        return None
    lag = max((datetime.now(UTC) - occurred_at).total_seconds(), 0.0)
    metrics.PURGE_LAG.labels(kind).observe(lag)
    return lag


def ack_wait_s(settings: PurgerSettings) -> float:
    """How long a message may stay unacknowledged before the broker delivers it again: a few
    repeats' time (a held message is told "in progress" twice as often)."""
    return max(10.0, 3 * settings.edge_purge_repeat_s)


def consumer_config(settings: PurgerSettings) -> ConsumerConfig:
    """Explicit acks; from the events of the last TTL; removed an hour after its edge left."""
    ttl = settings.edge_cache_ttl_s
    return ConsumerConfig(
        durable_name=settings.durable,
        deliver_policy=DeliverPolicy.BY_START_TIME,
        opt_start_time=datetime.now(UTC) - timedelta(seconds=ttl + 60),
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s(settings),
        max_ack_pending=20000,
        filter_subject=SUBJECT_PREFIX + ">",
        inactive_threshold=max(3600.0, ttl * 2.0),
    )
