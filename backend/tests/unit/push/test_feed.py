"""When a resuming client is told to reload, and how a replay joins the stream to the log."""

from __future__ import annotations

import asyncio

import pytest

from app.push.config import PushSettings
from app.push.feed import Feed, Stored
from app.push.log import Log, Post


class StoredStream(Feed):
    """A feed whose stream is a dict of sequence -> post (None: another event type)."""

    def __init__(self, stored: dict[int, Post | None], first: int, last: int) -> None:
        super().__init__(PushSettings(), Log(capacity=100))  # type: ignore[call-arg]
        self.stored, self.first, self.last = stored, first, last

    async def bounds(self) -> tuple[int, int]:
        return self.first, self.last

    async def stored_after(self, cursor: int) -> Stored | None:
        later = sorted(seq for seq in self.stored if seq > cursor)
        return Stored(later[0], self.stored[later[0]]) if later else None


def post(seq: int) -> Post:
    return Post(seq, 1, b"")


@pytest.mark.parametrize(
    ("cursor", "reason"),
    [
        (50, ""),  # inside the stream
        (9, ""),  # just before its first sequence: nothing was lost
        (8, "older than the stream keeps"),
        (120, "past the end of the stream"),
    ],
)
def test_a_position_outside_the_stream_asks_for_a_reload(cursor: int, reason: str) -> None:
    feed = StoredStream({}, first=10, last=100)
    feed.log.start_at(90)
    found = asyncio.run(feed.too_old_or_unknown(cursor))
    assert (reason in found) if reason else found == ""


def test_a_replay_reads_the_stream_up_to_the_log_then_the_log() -> None:
    stored: dict[int, Post | None] = {12: post(12), 15: None, 18: post(18), 21: post(21)}
    feed = StoredStream(stored, first=10, last=30)
    feed.log.start_at(20)  # the log holds every post from 20 on
    feed.log.append(post(21))
    feed.log.append(post(25))

    async def replay(cursor: int) -> list[int]:
        return [p.seq async for p in feed.replay(cursor)]

    assert asyncio.run(replay(11)) == [12, 18, 21, 25]
    assert asyncio.run(replay(12)) == [18, 21, 25]
    assert asyncio.run(replay(19)) == [21, 25]
    assert asyncio.run(replay(25)) == []


def test_a_position_further_back_than_the_resume_bound_asks_for_a_reload() -> None:
    feed = StoredStream({}, first=1, last=500_000)
    feed.log.start_at(499_990)
    assert "more than 100000 events behind" in asyncio.run(feed.too_old_or_unknown(0))
    assert asyncio.run(feed.too_old_or_unknown(450_000)) == ""
