"""The push log (pure): exact resume, bounded memory, slow clients dropped, and the SSE frames."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from app.push import sse
from app.push.log import Client, Log, Post, post_from_event


def post(seq: int, user_id: int = 1) -> Post:
    return Post(seq, user_id, f"post {seq}".encode())


def event(post_id: int = 42, user_id: int = 7, **data: object) -> bytes:
    body = {"user_id": user_id, "created_at": "2026-12-05T07:00:00.000000Z", **data}
    document = {"id": "a" * 32, "type": "post.created", "aggregate_id": post_id, "data": body}
    return json.dumps(document).encode()


def test_a_post_event_becomes_one_sse_frame_with_the_stream_sequence_as_id() -> None:
    found = post_from_event(1234, event(body="hello\nworld"))
    assert found is not None
    assert found.seq == 1234
    assert found.user_id == 7
    lines = found.frame.decode().split("\n")
    assert lines[0] == "id: 1234"
    assert lines[1] == "event: post"
    assert json.loads(lines[2].removeprefix("data: ")) == {
        "id": 42,
        "user_id": 7,
        "body": "hello\nworld",
        "created_at": "2026-12-05T07:00:00.000000Z",
    }
    assert found.frame.endswith(b"\n\n")
    assert found.frame.count(b"\n\n") == 1


@pytest.mark.parametrize(
    "payload", [b"not json", b"{}", json.dumps({"aggregate_id": "x"}).encode()]
)
def test_what_is_not_a_post_event_is_no_post(payload: bytes) -> None:
    assert post_from_event(1, payload) is None


@pytest.mark.parametrize(("header", "cursor"), [(None, None), ("", None), ("0", 0), ("77", 77)])
def test_last_event_id_is_a_stream_sequence(header: str | None, cursor: int | None) -> None:
    assert sse.last_event_id(header) == cursor


@pytest.mark.parametrize("header", ["-1", "abc", "1.5", " 7", "9" * 20, str(2**63)])
def test_a_last_event_id_that_is_no_sequence_is_refused(header: str) -> None:
    with pytest.raises(sse.BadLastEventId):
        sse.last_event_id(header)


def test_the_log_replays_exactly_the_posts_after_a_position() -> None:
    log = Log(capacity=10)
    log.start_at(100)
    for seq in (100, 103, 107, 110):
        log.append(post(seq))
    assert [p.seq for p in log.after(99)] == [100, 103, 107, 110]
    assert [p.seq for p in log.after(103)] == [107, 110]
    assert [p.seq for p in log.after(104)] == [107, 110]
    assert log.after(110) == []
    assert log.covers(99)
    assert not log.covers(98)


def test_a_sequence_read_twice_is_kept_once() -> None:
    log = Log(capacity=10)
    log.start_at(1)
    log.append(post(5))
    log.append(post(5))
    log.append(post(3))
    assert [p.seq for p in log.after(0)] == [5]


def test_the_log_forgets_old_posts_and_says_from_where_it_covers() -> None:
    log = Log(capacity=3)
    log.start_at(1)
    for seq in range(1, 8):  # 7 posts > 2 x capacity: the older ones go
        log.append(post(seq))
    kept = [p.seq for p in log.after(0)]
    assert kept == [5, 6, 7]
    assert log.covered_from == 5
    assert log.covers(4)
    assert not log.covers(3)


def test_new_posts_go_to_the_clients_that_want_them() -> None:
    async def run() -> None:
        log = Log(capacity=10)
        everyone, one_user = Client(None, 10), Client(7, 10)
        log.clients |= {everyone, one_user}
        log.append(post(1, user_id=7))
        log.append(post(2, user_id=8))
        assert [everyone.queue.get_nowait().seq for _ in range(2)] == [1, 2]
        assert one_user.queue.get_nowait().seq == 1
        assert one_user.queue.empty()

    asyncio.run(run())


def test_a_client_whose_buffer_is_full_is_dropped_and_the_others_are_not() -> None:
    async def run() -> None:
        log = Log(capacity=100)
        dropped: list[str] = []
        slow = Client(None, 3, on_drop=lambda: dropped.append("slow"))
        fast = Client(None, 3)
        log.clients |= {slow, fast}
        for seq in range(1, 5):
            log.append(post(seq))
            while not fast.queue.empty():  # the fast client reads everything
                fast.queue.get_nowait()
        assert dropped == ["slow"]
        assert slow.dropped
        assert log.clients == {fast}
        log.append(post(5))
        assert fast.queue.get_nowait().seq == 5

    asyncio.run(run())


def test_a_client_joins_the_live_posts_only_once_it_has_replayed_the_log() -> None:
    async def run() -> None:
        log = Log(capacity=10)
        log.start_at(1)
        log.append(post(3))
        client = Client(None, 10)
        assert not log.join(client, 1)  # post 3 is still to replay
        assert log.join(client, 3)
        log.append(post(4))
        assert client.queue.get_nowait().seq == 4

    asyncio.run(run())


def test_a_client_ahead_of_this_process_is_not_queued_what_it_has() -> None:
    async def run() -> None:
        log = Log(capacity=10)
        log.start_at(1)
        client = Client(None, 2)
        assert log.join(client, 50)  # it saw up to 50 on a process further along
        for seq in range(40, 52):  # this process catches up: 40..50 are not queued
            log.append(post(seq))
        assert not client.dropped
        assert [client.queue.get_nowait().seq for _ in range(1)] == [51]

    asyncio.run(run())


def test_a_refused_last_event_id_is_not_echoed_whole() -> None:
    with pytest.raises(sse.BadLastEventId) as refused:
        sse.last_event_id("x" * 4096)
    assert len(str(refused.value)) < 120


def made_at(seq: int, second: int) -> Post:
    return Post(seq, 1, b"", datetime(2026, 12, 7, 0, 0, second, tzinfo=UTC))


def test_a_stream_asked_for_at_a_time_starts_after_the_last_post_made_before_it() -> None:
    log = Log(capacity=10)
    log.start_at(5)
    for seq, second in [(5, 1), (6, 2), (7, 4), (8, 5)]:
        log.append(made_at(seq, second))
    assert log.position_before(datetime(2026, 12, 7, 0, 0, 3, tzinfo=UTC)) == 6
    assert log.position_before(datetime(2026, 12, 7, 0, 0, 9, tzinfo=UTC)) == 8  # nothing since
    # Every post the log holds was made after it: all of them, never a position it lacks.
    assert log.position_before(datetime(2026, 12, 7, 0, 0, 0, tzinfo=UTC)) == 4
