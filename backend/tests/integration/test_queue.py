"""The message-queue step on the test stack: the transactional outbox, the relay, the workers, and
the faults that must lose nothing (docs/messaging.md, docs/reliability.md).

Each fault runs under a bounded write load (posts by a few users, from threads). The verdict is the
set of events the committed writes produced: every one is in the stream exactly once, and the
counters the workers keep equal the real counts (each event applied once in effect).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
import requests
from nats.js.api import ConsumerConfig, DeliverPolicy

from stack import queue, supervisor
from stack.settings import Stack
from tests.integration.conftest import supervisorctl
from tests.integration.helpers import Api, Clients, Databases, eventually

pytestmark = pytest.mark.integration
USERS = 4
DRAIN_S = 60.0


@dataclass
class Load(Clients):
    """Posts by USERS users from one thread each, until stopped: what was acknowledged, what not."""

    base_url: str
    api_key: str
    users: list[int]
    acknowledged: dict[int, int] = field(default_factory=dict)  # post id -> user id
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, user_id: int) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    answer = session.post(
                        f"{self.base_url}/api/users/{user_id}/posts",
                        json={"body": "queued"},
                        headers={"X-API-Key": self.api_key},
                        timeout=10,
                    )
                    outcome = answer.status_code
                except requests.RequestException as error:
                    outcome = type(error).__name__  # type: ignore[assignment]
                with self.lock:
                    if outcome == 201:
                        self.acknowledged[answer.json()["id"]] = user_id
                    else:
                        self.failed.append(str(outcome))
                time.sleep(0.01)

    def clients(self) -> list[threading.Thread]:
        return [threading.Thread(target=self.write, args=(u,)) for u in self.users]


def nats_servers(stack: Stack) -> list[str]:
    return [f"nats://{stack.host}:{n.client_port}" for n in stack.nats_nodes]


async def with_broker(stack: Stack, work: Callable[[Any], Any], role: str = "READER") -> Any:
    """WORK(JetStream context) on a connection of the tests' own, as a user of ROLE."""
    login = stack.broker_login(role)
    nc = await nats.connect(
        servers=nats_servers(stack), user=login["NATS_USER"], password=login["NATS_PASSWORD"]
    )
    try:
        return await work(nc.jetstream())
    finally:
        await nc.close()


def stream_message_ids(stack: Stack, stream: str, first_seq: int) -> list[str]:
    """The message id (Nats-Msg-Id) of every message of STREAM from FIRST_SEQ on, in order."""

    async def read(js: Any) -> list[str]:
        info = await js.stream_info(stream)
        last = info.state.last_seq
        if last < first_seq:
            return []
        subscription = await js.pull_subscribe(
            "",
            stream=stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=first_seq,
                inactive_threshold=30,
            ),
        )
        ids: list[str] = []
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            try:
                batch = await subscription.fetch(500, timeout=2)
            except nats.errors.TimeoutError:
                continue  # a consumer on a stream that just changed leader may start late
            for message in batch:
                ids.append((message.headers or {}).get("Nats-Msg-Id", ""))
                await message.ack()
            if batch[-1].metadata.sequence.stream >= last:
                return ids
        raise AssertionError(f"read {len(ids)} messages of the stream before the deadline")

    result: list[str] = asyncio.run(with_broker(stack, read))
    return result


def stream_last_seq(stack: Stack, stream: str) -> int:
    async def last(js: Any) -> int:
        return int((await js.stream_info(stream)).state.last_seq)

    result: int = asyncio.run(with_broker(stack, last))
    return result


def stream_leader(stack: Stack) -> str:
    """The node leading the events stream now (asked through the broker's system account)."""
    for report in queue.reports(stack).values():
        if leader := queue.stream_leader(report, stack.env["EVENTS_STREAM"]):
            return leader
    raise AssertionError("the events stream has no leader")


def pid_of(stack: Stack, program: str) -> int:
    return int((stack.state / "run" / f"{program}.pid").read_text().split()[0])


def kill_program(stack: Stack, program: str) -> None:
    """SIGKILL PROGRAM and keep it down."""
    supervisor.crash(stack, program, pid_of(stack, program))


def outbox_since(dbs: Databases, first_id: int, users: list[int]) -> list[tuple[Any, ...]]:
    """(event_id, published?, wait s) of the post events of USERS from outbox row FIRST_ID on."""
    marks = ",".join(["%s"] * len(users))
    return dbs.query(
        "primary",
        "SELECT event_id, published_at IS NOT NULL, "  # noqa: S608 (placeholders only)
        "TIMESTAMPDIFF(MICROSECOND, created_at, published_at) / 1e6 FROM outbox "
        "WHERE id >= %s AND subject = 'events.post.created' "
        f"AND JSON_VALUE(payload, '$.data.user_id') IN ({marks})",
        first_id,
        *users,
    )


def counters(dbs: Databases, users: list[int]) -> dict[int, tuple[int, int]]:
    """User -> (post_count the workers keep, posts the user really has), on the primary."""
    marks = ",".join(["%s"] * len(users))
    rows = dbs.query(
        "primary",
        "SELECT u.id, COALESCE(s.post_count, 0), (SELECT COUNT(*) FROM posts p "  # noqa: S608
        "WHERE p.user_id = u.id) FROM users u LEFT JOIN user_stats s ON s.user_id = u.id "
        f"WHERE u.id IN ({marks})",
        *users,
    )
    return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}


@dataclass
class Mark:
    """Where the outbox and the stream stood before a load."""

    outbox_id: int
    stream_seq: int


def mark(dbs: Databases, stack: Stack) -> Mark:
    next_id = int(dbs.scalar("primary", "SELECT COALESCE(MAX(id), 0) + 1 FROM outbox"))
    return Mark(next_id, stream_last_seq(stack, stack.env["EVENTS_STREAM"]) + 1)


def verify_nothing_lost(
    dbs: Databases, stack: Stack, load: Load, since: Mark
) -> list[tuple[Any, ...]]:
    """Every committed post's event published once, and the counters exact; the outbox rows."""
    posts = list(load.acknowledged)
    marks = ",".join(["%s"] * len(posts))
    stored = dbs.scalar("primary", f"SELECT COUNT(*) FROM posts WHERE id IN ({marks})", *posts)  # noqa: S608
    assert stored == len(posts), "an acknowledged post is missing"

    def published() -> list[tuple[Any, ...]]:
        """The outbox rows of the load's posts once every one is published, else none."""
        rows = outbox_since(dbs, since.outbox_id, load.users)
        return rows if rows and all(p for _, p, _ in rows) else []

    rows = eventually(
        published,
        DRAIN_S,
        0.2,
    )
    assert len(rows) >= len(posts)  # one event per committed post (unacknowledged ones too)
    eventually(
        lambda: all(kept == real for kept, real in counters(dbs, load.users).values()),
        DRAIN_S,
        0.2,
    )
    in_stream = stream_message_ids(stack, stack.env["EVENTS_STREAM"], since.stream_seq)
    ours = [event_id for event_id in in_stream if event_id in {r[0] for r in rows}]
    assert len(ours) == len(set(ours)), "an event is in the stream twice"
    assert set(ours) == {r[0] for r in rows}, "a committed event is missing from the stream"
    return rows


@pytest.fixture
def users(api: Api) -> list[int]:
    return [api.create_user(f"queue-{i}", "Q")["id"] for i in range(USERS)]


@pytest.fixture
def everything_running(stack: Stack) -> Iterator[None]:
    """Whatever a test stopped is started again, and the queue is healthy, before the next."""
    yield
    supervisorctl("start", "all")
    eventually(lambda: stream_leader(stack), 30, 0.2)


def test_a_write_and_its_event_commit_together(api: Api, dbs: Databases) -> None:
    answer = api.post("/api/users", json={"name": "Outbox", "second_name": "Row"})
    assert answer.status_code == 201
    user_id = answer.json()["id"]
    rows = dbs.query(
        "primary",
        "SELECT subject, payload FROM outbox WHERE JSON_VALUE(payload, '$.aggregate') = 'user' "
        "AND JSON_VALUE(payload, '$.aggregate_id') = %s",
        user_id,
    )
    assert [r[0] for r in rows] == ["events.user.created"]
    event = json.loads(rows[0][1])
    assert event["type"] == "user.created"
    assert event["version"] == 1
    assert event["request_id"] == answer.headers["X-Request-ID"]
    assert len(event["id"]) == 32
    before = dbs.scalar("primary", "SELECT COUNT(*) FROM outbox")
    # A write that fails (no such user) commits nothing: no post, no event.
    assert api.post("/api/users/999999999/posts", json={"body": "x"}).status_code == 404
    assert dbs.scalar("primary", "SELECT COUNT(*) FROM outbox") == before


def test_the_workers_count_each_users_posts_once(api: Api, dbs: Databases) -> None:
    user_id = api.create_user("Counted", "Posts")["id"]
    created = [api.post(f"/api/users/{user_id}/posts", json={"body": f"p{i}"}) for i in range(5)]
    assert [c.status_code for c in created] == [201] * 5
    newest = created[-1].json()["created_at"]

    def counted() -> bool:
        document = api.get(f"/api/users/{user_id}").json()
        return bool(document["post_count"] == 5 and document["last_post_at"] == newest)

    eventually(counted, 15, 0.1)


def test_one_relay_holds_the_lease_and_another_takes_over_when_it_dies(
    stack: Stack, api: Api, dbs: Databases, users: list[int], everything_running: None
) -> None:
    holder = str(dbs.scalar("primary", "SELECT holder FROM relay_lease WHERE name = 'outbox'"))
    relay = holder.split(":")[0]
    assert relay in stack.relays
    since = mark(dbs, stack)
    with Load(stack.base_url, api.api_key or "", users) as load:
        time.sleep(1.0)
        kill_program(stack, relay)  # mid-batch, under load
        time.sleep(float(stack.env["RELAY_LEASE_S"]) + 2.0)
    assert load.failed == []
    rows = verify_nothing_lost(dbs, stack, load, since)
    taken = str(dbs.scalar("primary", "SELECT holder FROM relay_lease WHERE name = 'outbox'"))
    assert taken.split(":")[0] != relay
    print(f"relay killed: {len(rows)} events, longest wait {max(r[2] for r in rows):.2f} s")


def test_the_stream_leader_killed_loses_no_acknowledged_event(
    stack: Stack, api: Api, dbs: Databases, users: list[int], everything_running: None
) -> None:
    since = mark(dbs, stack)
    with Load(stack.base_url, api.api_key or "", users) as load:
        time.sleep(1.0)
        leader = stream_leader(stack)
        kill_program(stack, leader)
        eventually(lambda: stream_leader(stack) != leader, 30, 0.2)
        time.sleep(2.0)  # writes and publishes go on with two nodes of three
    assert load.failed == []
    supervisorctl("start", leader)  # the fault is over: the node rejoins and catches up
    rows = verify_nothing_lost(dbs, stack, load, since)
    gap = max(r[2] for r in rows)
    print(f"stream leader {leader} killed: {len(rows)} events, longest wait to publish {gap:.2f} s")
    assert gap < 15, "publishing did not resume after the re-election"


def test_the_whole_broker_down_for_10_s_writes_go_on_and_the_outbox_drains(
    stack: Stack, api: Api, dbs: Databases, users: list[int], everything_running: None
) -> None:
    since = mark(dbs, stack)
    nodes = [node.name for node in stack.nats_nodes]
    with Load(stack.base_url, api.api_key or "", users) as load:
        time.sleep(0.5)
        supervisorctl("stop", *nodes)
        stopped = time.monotonic()
        time.sleep(10.0)
        waiting = dbs.scalar("primary", "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        supervisorctl("start", *nodes)
        time.sleep(1.0)
    assert load.failed == [], "a write failed while the broker was down"
    assert waiting > 0, "the outbox did not grow while the broker was down"
    rows = verify_nothing_lost(dbs, stack, load, since)
    print(
        f"broker down {time.monotonic() - stopped:.0f} s: {len(rows)} events, "
        f"{waiting} waited in the outbox, longest wait {max(r[2] for r in rows):.2f} s"
    )


def test_a_worker_killed_with_unacked_messages_has_them_redelivered_and_applied_once(
    stack: Stack, api: Api, dbs: Databases, users: list[int], everything_running: None
) -> None:
    victim, others = stack.workers[0], stack.workers[1:]
    if others:
        supervisorctl("stop", *others)
    since = mark(dbs, stack)
    with Load(stack.base_url, api.api_key or "", users) as load:
        time.sleep(1.0)
        # Frozen mid-stream: what its pull request has received by now stays unacknowledged.
        os.kill(pid_of(stack, victim), signal.SIGSTOP)
        time.sleep(2.0)
    held = eventually(lambda: consumer_numbers(stack)["ack_pending"], 10, 0.2)
    kill_program(stack, victim)
    supervisorctl("start", *stack.workers)
    verify_nothing_lost(dbs, stack, load, since)
    print(f"worker killed holding {held} unacked message(s): all applied once")


def consumer_numbers(stack: Stack) -> dict[str, int]:
    """The consumer's pending and ack-pending counts, from the stream leader's view."""

    async def info(js: Any) -> dict[str, int]:
        found = await js.consumer_info(stack.env["EVENTS_STREAM"], stack.env["CONSUMER_NAME"])
        return {"pending": found.num_pending, "ack_pending": found.num_ack_pending}

    result: dict[str, int] = asyncio.run(with_broker(stack, info))
    return result


def test_a_message_that_always_fails_is_dead_lettered_and_the_rest_flow(
    stack: Stack, api: Api, dbs: Databases
) -> None:
    dead_stream = stack.env["DEAD_LETTER_STREAM"]
    before = stream_last_seq(stack, dead_stream)

    async def poison(js: Any) -> None:
        await js.publish("events.post.created", b"{not json", headers={"Nats-Msg-Id": "poison"})

    asyncio.run(with_broker(stack, poison, "RELAY"))  # only the relays' user may publish one
    user_id = api.create_user("After", "Poison")["id"]
    assert api.post(f"/api/users/{user_id}/posts", json={"body": "x"}).status_code == 201
    eventually(lambda: counters(dbs, [user_id])[user_id] == (1, 1), 15, 0.1)

    async def dead_letters(js: Any) -> list[Any]:
        info = await js.stream_info(dead_stream)
        return [
            await js.get_msg(dead_stream, seq) for seq in range(before + 1, info.state.last_seq + 1)
        ]

    letters = eventually(lambda: asyncio.run(with_broker(stack, dead_letters)), 20, 0.2)
    assert [letter.data for letter in letters] == [b"{not json"]
    headers = letters[0].headers or {}
    assert headers["Dead-Letter-Deliveries"] == stack.env["CONSUMER_MAX_DELIVER"]
    assert "BadEvent" in headers["Dead-Letter-Reason"]
