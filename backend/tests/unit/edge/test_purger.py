"""The purger's bookkeeping, with a fake nginx and fake messages: what is purged when, what is
acknowledged when, and when nginx may serve its copies."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from app.edge.config import PurgerSettings
from app.edge.nginx import PurgeFailed
from app.edge.purger import Purger
from app.messaging.outbox_status import OutboxStatus


@dataclass
class FakeEdge:
    """Records purges; serving says whether nginx may serve copies."""

    purged: list[str] = field(default_factory=list)
    serving: bool = False
    dropped_all: int = 0
    broken: bool = False

    def purge(self, path: str) -> bool:
        if self.broken:
            raise PurgeFailed(path)
        self.purged.append(path)
        return True

    def purge_all(self) -> int:
        self.dropped_all += 1
        return 0

    def serve(self, on: bool, lease_s: int = 3) -> None:
        self.serving = on


class FakeMessage:
    """A delivered message: its event, its stream sequence, and what the purger told the broker."""

    def __init__(self, seq: int, kind: str, aggregate_id: int, **data: Any) -> None:
        event = {
            "id": f"{seq:032x}",
            "type": kind,
            "aggregate_id": aggregate_id,
            "version": 1,
            "occurred_at": "2026-12-06T00:00:00.000000Z",
            "data": data,
        }
        self.data = json.dumps(event).encode()
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=seq))
        self.reply = f"$JS.ACK.EVENTS.purger-edge-1.1.{seq}.{seq}.0.0"
        self.acked = False

    async def ack(self) -> None:
        self.acked = True

    async def in_progress(self) -> None:
        pass


SOON: list[tuple[object, ...]] = []  # the early repeats the purgers scheduled (delay, fn, path)


def purger(edge: FakeEdge, floor: int = 0, max_lag_s: float = 10**9) -> Purger:
    settings = PurgerSettings(  # type: ignore[call-arg]  # the rest: their defaults
        edge_cache_dir="/nowhere",
        edge_following_file="/nowhere/following",
        edge_purge_repeat_s=60,
        edge_purge_max_lag_s=max_lag_s,
    )
    made = Purger(settings, edge, later=lambda *call: SOON.append(call))  # type: ignore[arg-type]
    made.behind = False
    made.outbox.last = OutboxStatus(time.time(), 0.0)  # a relay just looked: nothing waits

    async def workers_floor() -> int:
        return floor

    made.workers_floor = workers_floor  # type: ignore[method-assign]
    return made


def repeats_due(process: Purger) -> None:
    """Move the clock of every held repeat to now."""
    for held in process.held:
        held.due = 0.0


def test_a_patch_is_purged_at_once_again_after_the_repeat_and_acknowledged_then() -> None:
    edge = FakeEdge()
    process, message = purger(edge), FakeMessage(5, "user.updated", 7)
    process.handle(message)  # type: ignore[arg-type]
    assert edge.purged == ["/api/users/7"]
    asyncio.run(process.settle())
    assert not message.acked  # the repeat is not due yet
    repeats_due(process)
    asyncio.run(process.settle())
    assert edge.purged == ["/api/users/7", "/api/users/7"]
    assert message.acked
    assert process.held == []


def test_each_first_purge_is_repeated_soon_after_for_a_refill_a_moment_behind_it() -> None:
    edge = FakeEdge()
    process, message = purger(edge), FakeMessage(6, "user.updated", 8)
    SOON.clear()
    process.handle(message)  # type: ignore[arg-type]
    assert [(delay, path) for delay, _, path in SOON] == [
        (process.settings.edge_purge_soon_s, "/api/users/8")
    ]
    _, repeat, path = SOON[0]
    repeat(path)  # type: ignore[operator]
    assert edge.purged == ["/api/users/8", "/api/users/8"]
    assert len(SOON) == 1, "a repeat schedules no repeat of its own"


def test_a_post_purges_its_posts_page_at_once_and_its_user_when_a_worker_says_it_applied_it() -> (
    None
):
    edge = FakeEdge()
    process, message = purger(edge), FakeMessage(5, "post.created", 42, user_id=7)
    process.handle(message)  # type: ignore[arg-type]
    asyncio.run(process.settle())
    assert edge.purged == ["/api/users/7/posts"]  # post_count unchanged until a worker applies
    asyncio.run(process.on_applied(SimpleNamespace(data=b"5")))  # type: ignore[arg-type]
    assert edge.purged == ["/api/users/7/posts", "/api/users/7"]
    assert not message.acked
    repeats_due(process)
    asyncio.run(process.settle())
    assert edge.purged[2:] == ["/api/users/7/posts", "/api/users/7"]
    assert message.acked


def test_a_nudge_that_came_before_its_event_is_remembered() -> None:
    edge = FakeEdge()
    process = purger(edge)
    asyncio.run(process.on_applied(SimpleNamespace(data=b"5")))  # type: ignore[arg-type]
    process.handle(FakeMessage(5, "post.created", 42, user_id=7))  # type: ignore[arg-type]
    assert edge.purged == ["/api/users/7/posts", "/api/users/7"]


def test_without_a_nudge_the_workers_ack_floor_decides_after_a_while() -> None:
    edge = FakeEdge()
    process, message = purger(edge, floor=4), FakeMessage(5, "post.created", 42, user_id=7)
    process.handle(message)  # type: ignore[arg-type]
    process.held[0].received = 0.0  # long ago: the nudge was lost
    asyncio.run(process.settle())
    assert edge.purged == ["/api/users/7/posts"]  # the workers are at 4 only
    process.workers_floor = purger(edge, floor=5).workers_floor  # type: ignore[method-assign]
    asyncio.run(process.settle())
    assert edge.purged == ["/api/users/7/posts", "/api/users/7"]


def test_a_failed_purge_raises_and_the_loop_puts_the_edge_aside() -> None:
    edge = FakeEdge(serving=True, broken=True)
    process = purger(edge)
    with pytest.raises(PurgeFailed):
        process.handle(FakeMessage(5, "user.updated", 7))  # type: ignore[arg-type]
    process.step_aside("a purge failed")
    assert (edge.serving, process.behind) == (False, True)


@pytest.mark.parametrize(
    ("pending", "unacknowledged", "serves"),
    [(0, 0, True), (3, 0, False), (0, 2, False)],  # 2 delivered to a previous process
)
def test_the_edge_serves_again_only_caught_up_and_after_every_copy_was_dropped(
    pending: int, unacknowledged: int, serves: bool
) -> None:
    edge = FakeEdge()
    process = purger(edge)
    process.behind = True
    info = SimpleNamespace(num_pending=pending, num_ack_pending=unacknowledged)

    async def consumer_info(*_: Any, **__: Any) -> SimpleNamespace:
        return info

    process.nc = SimpleNamespace(  # type: ignore[assignment]
        jetstream=lambda: SimpleNamespace(consumer_info=consumer_info)
    )
    asyncio.run(process.check())
    assert edge.serving is serves
    assert edge.dropped_all == (1 if serves else 0)


def test_acks_the_broker_lost_are_sent_again_and_the_purger_follows_without_the_ack_wait() -> None:
    """Its own acks sent while the broker was away, or before the consumer had a leader again,
    were lost: the broker still counts those messages delivered. Not a previous process's: the
    purger acks them again and follows at the next look, not after the broker's ack wait."""
    edge = FakeEdge()
    process = purger(edge)
    done = [FakeMessage(seq, "user.updated", seq) for seq in (7, 8)]
    for message in done:
        asyncio.run(process.acked.ack(message))  # type: ignore[arg-type]
    acked_again: list[str] = []
    info = SimpleNamespace(num_pending=0, num_ack_pending=2)

    async def consumer_info(*_: Any, **__: Any) -> SimpleNamespace:
        return info

    async def publish(subject: str, payload: bytes = b"") -> None:
        acked_again.append(subject)
        info.num_ack_pending -= 1

    process.nc = SimpleNamespace(  # type: ignore[assignment]
        jetstream=lambda: SimpleNamespace(consumer_info=consumer_info), publish=publish
    )
    process.behind = True
    asyncio.run(process.check())
    assert acked_again == [message.reply for message in done]
    assert not edge.serving  # this look saw them pending
    process.last_check = 0.0  # the next look
    asyncio.run(process.check())
    assert edge.serving


def caught_up(process: Purger) -> None:
    """The broker says nothing waits for PROCESS and nothing is held elsewhere."""
    info = SimpleNamespace(num_pending=0, num_ack_pending=0)

    async def consumer_info(*_: Any, **__: Any) -> SimpleNamespace:
        return info

    process.nc = SimpleNamespace(  # type: ignore[assignment]
        jetstream=lambda: SimpleNamespace(consumer_info=consumer_info)
    )


@pytest.mark.parametrize(
    ("looked_ago_s", "oldest_wait_s"),
    [(0.0, 2.5), (2.5, 0.0), (1.5, 1.0)],  # a backlog; no word since; both (2.5 s either way)
)
def test_an_event_that_may_wait_in_the_outbox_past_the_bound_puts_the_edge_aside(
    looked_ago_s: float, oldest_wait_s: float
) -> None:
    """Its purge cannot come before a relay publishes it: the edge serves no copy meanwhile."""
    edge = FakeEdge(serving=True)
    process = purger(edge, max_lag_s=2.0)
    process.outbox.last = OutboxStatus(time.time() - looked_ago_s, oldest_wait_s)
    caught_up(process)
    asyncio.run(process.check())
    assert (edge.serving, process.behind) == (False, True)


@pytest.mark.parametrize("word", [None, "old", "fresh"])
def test_a_caught_up_purger_follows_again_only_once_the_relays_said_the_outbox_keeps_up(
    word: str | None,
) -> None:
    edge = FakeEdge()
    process = purger(edge, max_lag_s=2.0)
    process.behind = True
    now = time.time()
    statuses = {"old": OutboxStatus(now - 3.0, 0.0), "fresh": OutboxStatus(now, 0.5)}
    process.outbox.last = statuses.get(word or "")
    caught_up(process)
    asyncio.run(process.check())
    assert edge.serving is (word == "fresh")


def test_a_lease_that_ran_out_is_not_renewed_the_purger_catches_up_first() -> None:
    edge = FakeEdge(serving=True)
    process = purger(edge)
    process.leased_at = 0.0  # renewed long ago: the process was stopped (SIGSTOP) meanwhile
    process.renew()
    assert (edge.serving, process.behind) == (False, True)


def test_a_lease_is_renewed_while_the_purger_keeps_up() -> None:
    edge = FakeEdge()
    process = purger(edge)
    process.leased_at = time.monotonic()
    process.renew()
    assert edge.serving
    assert not process.behind
