"""The relays' wake-up: a committed write that recorded events publishes a word on a Redis
channel (events.OUTBOX_WAKE_CHANNEL, in the pipeline of its cache invalidation), and an idle
relay that hears it looks at the outbox at once. Polling the outbox every OUTBOX_POLL_INTERVAL_S
stays as the backstop (Redis away, a word lost): an event waits for that at most.

Measured before this (docs/benchmarks.md): the relay polled every 50 ms, which made an event
wait 25 ms on average for nothing and kept a relay and MariaDB busy while nothing happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.config import Settings
from app.messaging.events import OUTBOX_WAKE_CHANNEL

log = logging.getLogger("relay")
# After a lost subscription, the next try this long later (meanwhile the poll goes on).
RESUBSCRIBE_S = 1.0


class Wake:
    """Wakes an idle relay when a write has put events in the outbox."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.heard = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Listen in the background (for as long as the event loop runs)."""
        self.task = asyncio.create_task(self.listen())

    async def listen(self) -> None:
        """Subscribe, and set HEARD on every word; after a failure subscribe again."""
        while True:
            redis = Redis.from_url(
                self.settings.redis_url,
                password=self.settings.redis_password.get_secret_value() or None,
                socket_connect_timeout=1,
            )
            try:
                async with redis.pubsub() as channel:
                    await channel.subscribe(OUTBOX_WAKE_CHANNEL)
                    async for message in channel.listen():
                        if message.get("type") == "message":
                            self.heard.set()
            except (RedisError, OSError) as error:
                log.debug("relay wake-up: Redis unavailable", extra={"error": repr(error)[:200]})
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await redis.aclose()
            await asyncio.sleep(RESUBSCRIBE_S)

    async def wait(self, seconds: float, stopping: asyncio.Event) -> None:
        """Until a word comes, STOPPING is set, or SECONDS pass (the poll)."""
        waits = [asyncio.create_task(self.heard.wait()), asyncio.create_task(stopping.wait())]
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        self.heard.clear()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
