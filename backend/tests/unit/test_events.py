"""Domain events: what the outbox stores is what a consumer parses back, and nothing else is."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from app.messaging import events

AT = datetime(2026, 12, 5, 4, 30, 0, 123456)


def test_an_event_parses_back_as_it_was_recorded() -> None:
    event = events.new(events.POST_CREATED, 42, AT, "req-1", user_id=7, created_at="x")
    document = json.loads(event.payload())
    assert document == {
        "id": event.id,
        "type": "post.created",
        "aggregate": "post",
        "aggregate_id": 42,
        "version": 1,
        "occurred_at": "2026-12-05T04:30:00.123456Z",
        "request_id": "req-1",
        "data": {"user_id": 7, "created_at": "x"},
    }
    assert event.subject == "events.post.created"
    received = events.parse(event.payload())
    assert (received.id, received.type, received.aggregate_id) == (event.id, "post.created", 42)
    assert received.data == {"user_id": 7, "created_at": "x"}


def test_every_event_gets_its_own_id() -> None:
    ids = {events.new(events.USER_CREATED, 1, AT, "").id for _ in range(1000)}
    assert len(ids) == 1000


def test_an_unknown_type_is_never_recorded() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        events.new("user.renamed", 1, AT, "")


def good() -> dict[str, object]:
    return json.loads(events.new(events.USER_DELETED, 3, AT, "r").payload())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[]",
        json.dumps({**good(), "version": 2}).encode(),
        json.dumps({**good(), "type": "user.renamed"}).encode(),
        json.dumps({**good(), "id": "short"}).encode(),
        json.dumps({**good(), "aggregate_id": "3"}).encode(),
        json.dumps({k: v for k, v in good().items() if k != "id"}).encode(),
    ],
    ids=["bad-json", "not-an-object", "version", "type", "id", "aggregate-id", "no-id"],
)
def test_what_is_not_a_known_event_is_a_bad_event(payload: bytes) -> None:
    with pytest.raises(events.BadEvent):
        events.parse(payload)
