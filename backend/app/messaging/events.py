"""Domain events: what a committed write tells the rest of the system (docs/messaging.md).

Each write that changes a user or a post records one event in the outbox, in its own
transaction; the relay publishes it on subject ``events.<type>`` with the event id as the
JetStream message id. An event is JSON:

    {"id": "9f0c…", "type": "post.created", "aggregate": "post", "aggregate_id": 42,
     "version": 1, "occurred_at": "2026-12-05T04:30:00.123456Z", "request_id": "…",
     "data": {"user_id": 7, "created_at": "…", "body": "…"}}

``version`` is the version of the event's schema: a consumer meeting a version it does not know
stops on it (dead-lettered) instead of guessing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.ids import unique_hex
from app.schemas import timestamp

SCHEMA_VERSION = 1
SUBJECT_PREFIX = "events."
# The Redis channel a committed write that recorded events publishes on, in the pipeline of its
# cache invalidation (no round trip of its own): the relays wake at once instead of waiting for
# their next look at the outbox (OUTBOX_POLL_INTERVAL_S, the backstop when Redis is away).
OUTBOX_WAKE_CHANNEL = "outbox:wake"
# The core NATS subject (no stream keeps it) a queue worker names an event's stream sequence on
# once it applied the event: the edge purgers drop a derived field's copies at once. A nudge, at
# most once: the workers' ack floor, which the purgers also ask, is the truth.
APPLIED_SUBJECT = "applied.counters"
USER_CREATED, USER_UPDATED, USER_DELETED = "user.created", "user.updated", "user.deleted"
POST_CREATED = "post.created"
TYPES = (USER_CREATED, USER_UPDATED, USER_DELETED, POST_CREATED)


@dataclass(frozen=True)
class Event:
    """One domain event, ready for the outbox."""

    id: str
    type: str
    aggregate: str
    aggregate_id: int
    occurred_at: datetime
    request_id: str
    data: dict[str, Any]

    @property
    def subject(self) -> str:
        return SUBJECT_PREFIX + self.type

    def payload(self) -> bytes:
        """The event as the broker carries it."""
        return json.dumps(
            {
                "id": self.id,
                "type": self.type,
                "aggregate": self.aggregate,
                "aggregate_id": self.aggregate_id,
                "version": SCHEMA_VERSION,
                "occurred_at": timestamp(self.occurred_at),
                "request_id": self.request_id,
                "data": self.data,
            },
            separators=(",", ":"),
        ).encode()


def new(kind: str, aggregate_id: int, at: datetime, request_id: str, **data: Any) -> Event:
    """A new event of type KIND (one of TYPES) about AGGREGATE_ID, at AT."""
    if kind not in TYPES:
        raise ValueError(f"unknown event type {kind!r}")
    return Event(unique_hex(), kind, kind.split(".")[0], aggregate_id, at, request_id, data)


class BadEvent(ValueError):
    """A message that is not an event this consumer knows: it can never be applied."""


@dataclass(frozen=True)
class Received:
    """An event as a consumer reads it back."""

    id: str
    type: str
    aggregate_id: int
    data: dict[str, Any]
    # When the write that recorded it happened (None: not said in a form this code reads).
    occurred_at: datetime | None = None


def written_at(value: object) -> datetime | None:
    """An event's occurred_at (ISO 8601 with a Z) as a datetime; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse(payload: bytes) -> Received:
    """The event in PAYLOAD; BadEvent when it is not one (bad JSON, unknown type or version)."""
    try:
        document = json.loads(payload)
        if not isinstance(document, dict):
            raise BadEvent("not a JSON object")
        if document.get("version") != SCHEMA_VERSION:
            raise BadEvent(f"unknown version {document.get('version')!r}")
        if document.get("type") not in TYPES:
            raise BadEvent(f"unknown type {document.get('type')!r}")
        event_id, aggregate_id = document["id"], document["aggregate_id"]
        data = document.get("data", {})
        if not (isinstance(event_id, str) and len(event_id) == 32 and event_id.isalnum()):
            raise BadEvent("bad event id")
        if not isinstance(aggregate_id, int) or not isinstance(data, dict):
            raise BadEvent("bad aggregate id or data")
    except (ValueError, KeyError, TypeError) as error:
        raise BadEvent(str(error)) from error
    return Received(
        event_id, document["type"], aggregate_id, data, written_at(document.get("occurred_at"))
    )
