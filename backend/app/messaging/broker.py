"""The JetStream cluster as the relay and the workers use it: the connection, the stream of
domain events, its dead-letter stream and the durable consumer the workers share.

Each relay applies the streams' definitions when it connects (add, else update to match), at its
start; the workers wait for them. So both ways to run need no setup step of their own.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Protocol

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from nats.js.errors import Error as JetStreamError
from pydantic import SecretStr

from app.config import Settings
from app.messaging.events import SUBJECT_PREFIX

log = logging.getLogger(__name__)
DEAD_LETTER_PREFIX = "deadletter."
# What a lost or failing broker raises: the caller backs off and connects again.
BROKER_ERRORS = (NatsError, JetStreamError, OSError, asyncio.TimeoutError)
# A worker's pull waits this long for messages before it looks again (and reports its lag).
FETCH_WAIT_S = 1.0


class BrokerLogin(Protocol):
    """What a connection needs of a process's settings (the API's, a purger's, ...)."""

    @property
    def nats_servers(self) -> tuple[str, ...]: ...
    @property
    def nats_user(self) -> str: ...
    @property
    def nats_password(self) -> SecretStr: ...


class Outage:
    """A connection's errors told once per outage: nats-py's own callback logs every failed
    reconnection (four a second, each with its traceback, in every process, for as long as the
    broker is away). Here the first error of a run is a warning, and the reconnection that ends
    it says how many errors the run had."""

    def __init__(self) -> None:
        self.errors = 0  # of the current run (each log line names its process: served_by)

    async def error(self, error: Exception) -> None:
        if self.errors == 0:
            log.warning(
                "broker connection failing: reconnecting", extra={"error": repr(error)[:200]}
            )
        self.errors += 1

    async def reconnected(self) -> None:
        log.info("broker connection back", extra={"errors": self.errors})
        self.errors = 0


async def connect(settings: BrokerLogin, name: str, **callbacks: Any) -> Client:
    """A connection to any node of the cluster that answers, reconnecting for ever once made;
    CALLBACKS are nats-py's (disconnected_cb, ...). Its errors are told once per outage."""
    outage = Outage()
    return await nats.connect(
        **{"error_cb": outage.error, "reconnected_cb": outage.reconnected, **callbacks},
        servers=list(settings.nats_servers),
        user=settings.nats_user,
        password=settings.nats_password.get_secret_value(),
        name=name,
        connect_timeout=2,
        reconnect_time_wait=0.25,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
    )


def events_stream(settings: Settings) -> StreamConfig:
    """Every domain event (events.>), on disk, with NATS_STREAM_REPLICAS copies (Raft)."""
    return StreamConfig(
        name=settings.events_stream,
        subjects=[SUBJECT_PREFIX + ">"],
        storage=StorageType.FILE,
        num_replicas=settings.events_stream_replicas,
        max_age=settings.events_max_age_s,
        duplicate_window=settings.events_duplicate_window_s,
    )


def dead_letter_stream(settings: Settings) -> StreamConfig:
    """Messages no worker could apply after CONSUMER_MAX_DELIVER deliveries, kept for a look."""
    return StreamConfig(
        name=settings.dead_letter_stream,
        subjects=[DEAD_LETTER_PREFIX + ">"],
        storage=StorageType.FILE,
        num_replicas=settings.events_stream_replicas,
        max_age=settings.events_max_age_s,
    )


def consumer(settings: Settings) -> ConsumerConfig:
    """The durable pull consumer every worker binds to (the consumer group): explicit acks, a
    redelivery after CONSUMER_ACK_WAIT_S without one, at most CONSUMER_MAX_DELIVER deliveries."""
    return ConsumerConfig(
        durable_name=settings.consumer_name,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.consumer_ack_wait_s,
        max_deliver=settings.consumer_max_deliver,
        filter_subject=SUBJECT_PREFIX + ">",
        max_ack_pending=max(1000, settings.consumer_batch * 20),
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream CONFIG names, or bring an existing one to CONFIG."""
    try:
        await js.add_stream(config)
    except BadRequestError:  # exists with other settings
        await js.update_stream(config)


async def ensure_streams(js: JetStreamContext, settings: Settings) -> None:
    """The events stream and the dead-letter stream, as configured (the relays' to do: no other
    role may define a stream, see nats/nats-server.conf)."""
    await ensure_stream(js, events_stream(settings))
    await ensure_stream(js, dead_letter_stream(settings))


async def streams_exist(js: JetStreamContext, settings: Settings) -> None:
    """Return once both streams exist; NotFoundError (a broker error: the caller backs off and
    asks again) while a relay has not defined them yet."""
    await js.stream_info(settings.events_stream)
    await js.stream_info(settings.dead_letter_stream)


def backoff(attempt: int, cap_s: float, base_s: float = 0.05) -> float:
    """Exponential backoff with full jitter: a random wait up to min(CAP_S, BASE_S * 2^ATTEMPT),
    so that processes retrying together do not retry in step."""
    return random.uniform(0, min(cap_s, base_s * 2 ** min(attempt, 20)))
