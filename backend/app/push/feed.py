"""The post stream as a push process reads it: one ordered consumer on JetStream, feeding the
log (log.py), and the stream itself for positions older than the log.

nats-py's ordered consumer delivers the subject's messages in stream order, one consumer per
process (no ack, memory storage, no state on the server worth keeping). It notices a gap or a
silent consumer (idle heartbeats) and makes a new one from the next sequence by itself; a
watchdog here covers the rest (a consumer that is gone while the client could not say so, e.g.
across a stream leader's loss), again from the sequence after the last one read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.aio.client import Client as Nats
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from app.messaging import broker
from app.messaging.events import POST_CREATED, SUBJECT_PREFIX
from app.push import metrics
from app.push.config import PushSettings
from app.push.log import Log, Post, post_from_event

log = logging.getLogger(__name__)
POST_SUBJECT = SUBJECT_PREFIX + POST_CREATED
# Missed heartbeats make the ordered consumer start again: two of these (seconds) after a loss.
IDLE_HEARTBEAT_S = 1.0


@dataclass(frozen=True)
class Stored:
    """A message read back from the stream: its sequence, and its post (None: not a post)."""

    seq: int
    post: Post | None


class Feed:
    """The stream of posts of one push process."""

    def __init__(self, settings: PushSettings, log_: Log) -> None:
        self.settings = settings
        self.log = log_
        self.ready = asyncio.Event()
        self.problem = "starting"
        self.nc: Nats | None = None
        self.js: JetStreamContext | None = None
        self.sub: JetStreamContext.PushSubscription | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect (retrying in the background until the broker answers) and follow the stream."""
        self.task = asyncio.create_task(self._run())
        self.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The feed never ends but on stop: anything else is a bug, made loud (and unready)."""
        if not task.cancelled() and task.exception() is not None:
            self.ready.clear()
            self.problem = f"the feed stopped: {task.exception()!r}"
            log.error("the feed stopped", exc_info=task.exception())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        if self.nc and not self.nc.is_closed:
            await self.nc.close()

    async def _run(self) -> None:
        while self.nc is None:
            try:
                self.nc = await broker.connect(self.settings, self.settings.push_name)
            except Exception as error:  # no node answers yet: keep trying
                self.problem = f"broker unreachable: {error!r}"
                await asyncio.sleep(1)
        self.js = self.nc.jetstream()
        first, last = await self._wait_for_stream()
        # Keep the last PUSH_REPLAY_EVENTS messages' worth of posts from the start, so clients
        # that were on a process that just died resume from memory here.
        start = max(first, last - self.settings.push_replay_events + 1, 1)
        self.log.start_at(start)
        while True:  # the cluster may answer before JetStream takes consumers (a restart)
            try:
                await self._subscribe(start)
                break
            except Exception as error:
                self.problem = f"cannot follow the stream yet: {error!r}"
                log.warning("%s", self.problem)
                await asyncio.sleep(1)
        self.ready.set()
        self.problem = ""
        await self._watch()

    async def _wait_for_stream(self) -> tuple[int, int]:
        while True:
            try:
                return await self.bounds()
            except Exception as error:  # defined by the relays at their start; or no leader yet
                self.problem = f"stream {self.settings.events_stream} not available: {error!r}"
                await asyncio.sleep(0.5)

    async def bounds(self) -> tuple[int, int]:
        """The stream's first and last sequence."""
        assert self.js is not None
        info = await self.js.stream_info(self.settings.events_stream)
        return info.state.first_seq, info.state.last_seq

    async def _subscribe(self, seq: int) -> None:
        assert self.js is not None
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=seq)
        self.sub = await self.js.subscribe(
            POST_SUBJECT,
            stream=self.settings.events_stream,
            ordered_consumer=True,
            idle_heartbeat=IDLE_HEARTBEAT_S,
            config=config,
            cb=self._on_message,
        )
        log.info("following %s from sequence %d", POST_SUBJECT, seq)

    async def _watch(self) -> None:
        """Make a new consumer from the next sequence when the current one is gone for good."""
        missing, lost = 0, False
        while True:
            await asyncio.sleep(self.settings.push_feed_check_s)
            assert self.sub is not None
            if not lost:
                try:
                    await self.sub.consumer_info()
                    missing, self.problem = 0, ""
                    continue
                except NotFoundError:
                    missing += 1
                except Exception as error:  # no answer (no leader for now): look again
                    self.problem = f"consumer not reachable: {error!r}"
                    continue
                if missing < 2:
                    continue
                lost = True
                log.warning("ordered consumer gone; following again from %d", self.log.head + 1)
                try:
                    await self.sub.unsubscribe()
                except Exception:  # already gone with its connection
                    log.debug("unsubscribe failed", exc_info=True)
            try:
                await self._subscribe(self.log.head + 1)
            except Exception as error:  # no answer yet: the next check tries again
                self.problem = f"consumer lost, cannot follow again yet: {error!r}"
                continue
            metrics.FEED_RESTARTS.inc()
            missing, lost, self.problem = 0, False, ""

    async def _on_message(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        post = post_from_event(seq, msg.data)
        if post is None:
            metrics.BAD_EVENTS.inc()
            return
        if post.created_at is not None:
            metrics.FEED_DELAY.observe(max(0.0, time.time() - post.created_at.timestamp()))
        for _ in self.log.append(post):
            metrics.DROPPED.inc()
        metrics.FEED_SEQUENCE.set(self.log.head)
        # Let every stream write this post before the next one is read: a burst (the backlog
        # after a broker outage) then fills no client's buffer but a client that does not read.
        await asyncio.sleep(0)

    async def stored_after(self, cursor: int) -> Stored | None:
        """The first post-subject message after CURSOR in the stream (None: there is none)."""
        assert self.js is not None
        try:
            raw = await self.js.get_msg(
                self.settings.events_stream, cursor + 1, subject=POST_SUBJECT, next=True
            )
        except NotFoundError:
            return None
        seq = int(raw.seq or 0)
        return Stored(seq, post_from_event(seq, raw.data or b""))

    async def replay(self, cursor: int) -> AsyncIterator[Post]:
        """Every post after CURSOR known now, oldest first: from the stream while the log does
        not reach back that far, then from the log."""
        while not self.log.covers(cursor):
            boundary = self.log.covered_from
            found = await self.stored_after(cursor)
            if found is None or found.seq >= boundary:
                cursor = boundary - 1  # the log holds the rest (unless it moved on meanwhile)
                continue
            cursor = found.seq
            if found.post is not None:
                metrics.REPLAYED.labels("stream").inc()
                yield found.post
        for post in self.log.after(cursor):
            metrics.REPLAYED.labels("memory").inc()
            yield post

    async def too_old_or_unknown(self, cursor: int) -> str:
        """Why a client at CURSOR cannot resume ('' when it can)."""
        if self.log.covers(cursor) and cursor <= self.log.head:
            return ""
        try:
            first, last = await self.bounds()
        except Exception:  # the broker cannot say: resume; the stream check comes next time
            return ""
        if cursor > last:
            return f"position {cursor} is past the end of the stream ({last})"
        if cursor + 1 < first and not self.log.covers(cursor):
            return f"position {cursor} is older than the stream keeps (it starts at {first})"
        if last - cursor > self.settings.push_max_resume_events:  # Last-Event-ID: 0, say
            bound = self.settings.push_max_resume_events
            return f"position {cursor} is more than {bound} events behind the stream ({last})"
        return ""
