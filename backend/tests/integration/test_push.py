"""Live push on the test stack: streams of new posts through nginx and from each push process,
exact resume with Last-Event-ID (also on another process), the bounds, and the faults
(docs/push.md): a push process killed under 50 clients, the stream leader killed, a slow client.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
import requests

from stack import processes
from stack.settings import Stack
from tests.integration.conftest import supervisorctl
from tests.integration.helpers import Api, eventually
from tests.integration.streams import Listener
from tests.integration.test_queue import (
    consumer_numbers,
    kill_program,
    stream_last_seq,
    stream_leader,
    with_broker,
)

pytestmark = pytest.mark.integration


def push_url(stack: Stack, name: str) -> str:
    """A push process's own address (the tests may pick the process; clients go via nginx)."""
    port = next(p.port for p in stack.pushes if p.name == name)
    return f"http://{stack.host}:{port}"


@contextmanager
def listening(*listeners: Listener) -> Iterator[list[Listener]]:
    """Start LISTENERS, wait until each has its stream open, close them all afterwards."""
    for listener in listeners:
        listener.start()
    try:
        for listener in listeners:
            assert listener.connected.wait(10), f"{listener.url}: no stream ({listener.refused})"
        yield list(listeners)
    finally:
        for listener in listeners:  # all told first: each ends at its next line (a heartbeat)
            listener.stop.set()
        for listener in listeners:
            listener.close()


class Writer:
    """Posts by one user from one thread, one at a time (so their stream order is their order)."""

    def __init__(self, api: Api, user_id: int, pause: float = 0.05) -> None:
        self.api, self.user_id, self.pause = api, user_id, pause
        self.created: list[int] = []
        self.failed: list[int] = []
        self.stop = threading.Event()

    def post(self, body: str = "live") -> int:
        answer = self.api.post(f"/api/users/{self.user_id}/posts", json={"body": body})
        assert answer.status_code == 201, answer.text
        post_id: int = answer.json()["id"]
        self.created.append(post_id)
        return post_id

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.post(f"post {len(self.created)}")
            except AssertionError:
                self.failed.append(len(self.created))
            time.sleep(self.pause)

    def __enter__(self) -> Writer:
        self.thread = threading.Thread(target=self.run)
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def post_ids(listener: Listener) -> list[int]:
    return [e.data["id"] for e in listener.posts]


def received_all(listener: Listener, created: list[int]) -> bool:
    return set(created) <= set(post_ids(listener))


def wait_all_received(listeners: list[Listener], created: list[int], timeout: float) -> None:
    """Wait until every listener has every post of CREATED; else fail showing what one lacks."""
    try:
        eventually(lambda: all(received_all(c, created) for c in listeners), timeout=timeout)
    except AssertionError:
        for listener in listeners:
            assert_exactly_once_in_order(listener, created)
        raise


def assert_exactly_once_in_order(listener: Listener, created: list[int]) -> None:
    """LISTENER got every post of CREATED, each once, in the order they were created."""
    mine = [i for i in post_ids(listener) if i in set(created)]
    assert mine == created, (
        f"{listener.served_by}: {len(mine)} received, {len(created)} created; "
        f"missing {sorted(set(created) - set(mine))[:10]}, "
        f"twice {sorted({i for i in mine if mine.count(i) > 1})[:10]}"
    )
    seqs = [int(e.id or 0) for e in listener.posts]
    assert seqs == sorted(set(seqs)), "event ids are not strictly increasing"


@pytest.fixture
def author(api: Api) -> int:
    user_id: int = api.create_user("Live", "Writer")["id"]
    return user_id


def test_a_stream_carries_each_new_post_with_its_stream_sequence_as_id(
    stack: Stack, api: Api, author: int
) -> None:
    with listening(Listener(f"{stack.base_url}/api/stream/posts")) as (listener,):
        ready = listener.events[0]
        assert ready.name == "ready"
        assert ready.id is not None
        assert ready.data["served_by"] in {p.name for p in stack.pushes}
        writer = Writer(api, author)
        created = [writer.post(f"hello {i}") for i in range(3)]
        eventually(lambda: received_all(listener, created), timeout=10)
    assert_exactly_once_in_order(listener, created)
    first = listener.posts[0]
    assert first.data["user_id"] == author
    assert first.data["body"] == "hello 0"
    assert int(first.id or 0) > int(ready.id)
    assert listener.served_by[0] == ready.data["served_by"]


def test_a_stream_answers_as_an_event_stream_through_nginx_unbuffered(stack: Stack) -> None:
    with requests.get(f"{stack.base_url}/api/stream/posts", stream=True, timeout=5) as answer:
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["X-Served-By"].startswith("push-")
        assert answer.headers["X-Request-ID"]
        lines = answer.iter_lines(decode_unicode=True)
        assert next(lines) == "retry: 1000"


def test_an_idle_stream_carries_a_heartbeat_comment(stack: Stack) -> None:
    heartbeat = float(stack.env["PUSH_HEARTBEAT_S"])
    with listening(Listener(f"{stack.base_url}/api/stream/posts")) as (listener,):
        eventually(lambda: len(listener.comments) >= 2, timeout=3 * heartbeat + 2)
    gap = listener.comments[1] - listener.comments[0]
    assert heartbeat * 0.5 < gap < heartbeat * 2


def test_a_user_stream_carries_only_that_users_posts(stack: Stack, api: Api, author: int) -> None:
    other = api.create_user("Someone", "Else")["id"]
    url = f"{stack.base_url}/api/users/{author}/stream"
    with listening(Listener(url), Listener(f"{stack.base_url}/api/stream/posts")) as (mine, all_):
        theirs = Writer(api, other).post("not for this stream")
        ours = Writer(api, author).post("for this stream")
        eventually(lambda: received_all(all_, [theirs, ours]), timeout=10)
        eventually(lambda: received_all(mine, [ours]), timeout=10)
    assert post_ids(mine) == [ours]


def test_a_client_resumes_exactly_where_it_left_off_on_another_push_process(
    stack: Stack, api: Api, author: int
) -> None:
    first, second = stack.pushes[0].name, stack.pushes[1].name
    writer = Writer(api, author)
    with listening(Listener(f"{push_url(stack, first)}/api/stream/posts")) as (before,):
        seen = [writer.post(f"seen {i}") for i in range(3)]
        eventually(lambda: received_all(before, seen), timeout=10)
    missed = [writer.post(f"missed {i}") for i in range(5)]
    resumed = Listener(f"{push_url(stack, second)}/api/stream/posts", last_id=before.last_id)
    with listening(resumed):
        later = [writer.post(f"later {i}") for i in range(2)]
        eventually(lambda: received_all(resumed, missed + later), timeout=10)
    assert resumed.served_by == [second]
    assert before.served_by == [first]
    assert resumed.events[0].name == "ready"
    assert resumed.events[0].data["resumed"] is True
    assert resumed.events[0].id is None  # it keeps its own position
    assert_exactly_once_in_order(resumed, missed + later)
    assert not set(post_ids(resumed)) & set(seen)


def test_a_position_the_stream_does_not_have_gets_a_reload_event(stack: Stack) -> None:
    future = Listener(f"{stack.base_url}/api/stream/posts", last_id=str(10**15), reconnect=False)
    with listening(future):
        pass
    reload = future.events[0]
    assert reload.name == "reload"
    assert "past the end of the stream" in reload.data["reason"]
    assert reload.id is not None
    assert int(reload.id) < 10**15


def test_a_position_older_than_the_stream_keeps_gets_a_reload_event(
    stack: Stack, api: Api, author: int
) -> None:
    Writer(api, author).post("before the purge")
    stream = stack.env["EVENTS_STREAM"]
    # Let the workers apply what they hold, then drop the stream's older messages, as its age
    # limit (EVENTS_MAX_AGE_S) would, and start push-1 again: its memory starts at the new first.
    eventually(lambda: consumer_numbers(stack) == {"pending": 0, "ack_pending": 0}, timeout=30)
    last = stream_last_seq(stack, stream)
    asyncio.run(with_broker(stack, lambda js: js.purge_stream(stream, seq=last), "ADMIN"))
    name = stack.pushes[0].name
    supervisorctl("restart", name)
    wait_following(stack, name)
    old = Listener(f"{push_url(stack, name)}/api/stream/posts", last_id="1", reconnect=False)
    with listening(old):
        new_post = Writer(api, author).post("after the reload")
        eventually(lambda: received_all(old, [new_post]), timeout=10)
    reload = old.events[0]
    assert reload.name == "reload"
    assert f"older than the stream keeps (it starts at {last})" in reload.data["reason"]
    assert reload.id is not None
    assert int(reload.id) >= last - 1
    assert post_ids(old) == [new_post]  # the stream from now on, nothing older


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/api/stream/posts", {"Last-Event-ID": "not-a-number"}, 400),
        ("/api/stream/posts", {"Last-Event-ID": "9" * 25}, 400),
        ("/api/users/0/stream", {}, 404),
        ("/api/users/99999999999999999999/stream", {}, 404),
    ],
)
def test_a_bad_stream_request_is_a_problem_json_4xx(
    stack: Stack, path: str, headers: dict[str, str], status: int
) -> None:
    answer = requests.get(f"{stack.base_url}{path}", headers=headers, timeout=5)
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["status"] == status


def test_a_write_method_on_a_stream_is_405(stack: Stack) -> None:
    answer = requests.post(f"{stack.base_url}/api/stream/posts", timeout=5)
    assert answer.status_code == 405
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers["Allow"] == "GET"


def open_raw(host: str, port: int, path: str, source: str = "") -> tuple[socket.socket, bytes]:
    """A stream opened on a raw socket (from SOURCE if given): the socket and its status line."""
    sock = socket.create_connection(
        (host, port), timeout=5, source_address=(source, 0) if source else None
    )
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def test_a_push_process_holding_its_most_streams_answers_503_problem_json(stack: Stack) -> None:
    limit = int(stack.env["PUSH_MAX_STREAMS"])
    push = stack.pushes[0]
    held: list[socket.socket] = []
    try:
        for _ in range(limit):
            sock, head = open_raw(stack.host, push.port, "/api/stream/posts")
            held.append(sock)
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
        answer = requests.get(f"{push_url(stack, push.name)}/api/stream/posts", timeout=5)
        assert answer.status_code == 503
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.headers["Retry-After"] == "1"
        assert f"({limit})" in answer.json()["detail"]
    finally:
        for sock in held:
            sock.close()
    # Each stream is let go when its client leaves: the process takes new ones again.
    health = f"{push_url(stack, push.name)}/healthz"
    eventually(lambda: requests.get(health, timeout=2).json()["streams"] == 0, timeout=10)


def test_streams_from_one_address_are_capped_with_a_429_problem(stack: Stack) -> None:
    cap = int(stack.env["PUSH_STREAMS_PER_ADDRESS"])
    held: list[socket.socket] = []
    try:
        # 127.0.0.3: not in the test stack's exempt list (127.0.0.1), like any client.
        for _ in range(cap):
            sock, head = open_raw(stack.host, stack.nginx_port, "/api/stream/posts", "127.0.0.3")
            held.append(sock)
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
        sock, head = open_raw(stack.host, stack.nginx_port, "/api/stream/posts", "127.0.0.3")
        held.append(sock)
        assert head.startswith(b"HTTP/1.1 429"), head[:300]
        assert b"application/problem+json" in head
    finally:
        for sock in held:
            sock.close()


def wait_following(stack: Stack, name: str) -> None:
    """Wait until push process NAME is up and its feed follows the stream."""

    def following() -> bool:
        try:
            health = requests.get(f"{push_url(stack, name)}/healthz", timeout=1)
        except requests.RequestException:
            return False
        return bool(health.json()["status"] == "ok")

    eventually(following, timeout=30)


def push_pids(stack: Stack, name: str) -> list[int]:
    """The gunicorn master of push process NAME and its worker (the one holding the streams)."""
    master = int((stack.state / "run" / f"{name}.pid").read_text().split()[0])
    children = [pid for pid, (ppid, _, _) in processes.scan().items() if ppid == master]
    return [master, *children]


def test_a_push_process_killed_under_50_clients_loses_no_post_for_any_of_them(
    stack: Stack, api: Api, author: int
) -> None:
    listeners = [Listener(f"{stack.base_url}/api/stream/posts") for _ in range(50)]
    with listening(*listeners):
        with Writer(api, author, pause=0.05) as writer:
            eventually(lambda: len(writer.created) >= 10, timeout=10)
            # The process holding the most of them (nginx spreads them; all may be on one).
            served = [c.served_by[-1] for c in listeners]
            victim = max(set(served), key=served.count)
            on_victim = [c for c in listeners if c.served_by[-1] == victim]
            for pid in push_pids(stack, victim):
                os.kill(pid, signal.SIGKILL)
            killed_at = len(writer.created)
            eventually(lambda: all(len(c.served_by) >= 2 for c in on_victim), timeout=20)
            eventually(lambda: len(writer.created) >= killed_at + 20, timeout=20)
        created = writer.created
        assert not writer.failed
        wait_all_received(listeners, created, timeout=20)
    for listener in listeners:
        assert_exactly_once_in_order(listener, created)
    moved = sum(c.served_by[1] != victim for c in on_victim)
    print(
        f"push process killed: {len(on_victim)} of 50 clients on it, all reconnected "
        f"({moved} to a survivor), {len(created)} posts, each received once in order by all 50"
    )
    # supervisord restarts the killed process by itself; the next tests want it back.
    wait_following(stack, victim)


def test_streams_pause_and_resume_without_gaps_when_the_stream_leader_is_killed(
    stack: Stack, api: Api, author: int
) -> None:
    listeners = [Listener(f"{stack.base_url}/api/stream/posts") for _ in range(5)]
    with listening(*listeners):
        with Writer(api, author, pause=0.05) as writer:
            eventually(lambda: len(writer.created) >= 10, timeout=10)
            leader = stream_leader(stack)
            kill_program(stack, leader)
            try:
                eventually(lambda: stream_leader(stack) != leader, 30, 0.2)
                mark = len(writer.created)
                eventually(lambda: len(writer.created) >= mark + 20, timeout=30)
            finally:
                supervisorctl("start", leader)
        created = writer.created
        wait_all_received(listeners, created, timeout=30)
    for listener in listeners:
        assert_exactly_once_in_order(listener, created)
    gaps = [max(b.at - a.at for a, b in zip(c.posts, c.posts[1:], strict=False)) for c in listeners]
    print(f"stream leader {leader} killed: longest pause between posts {max(gaps):.2f} s")


def slow_clients_dropped(stack: Stack) -> float:
    """Clients the push processes dropped because their buffer was full, so far."""
    total = 0.0
    for push in stack.pushes:
        text = requests.get(f"{push_url(stack, push.name)}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith("push_slow_clients_dropped_total "):
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_slow_client_is_dropped_and_never_slows_the_others(
    stack: Stack, api: Api, author: int
) -> None:
    dropped_before = slow_clients_dropped(stack)
    # The slow client: a tiny receive window, and it never reads. It is on a push process
    # directly: through nginx, nginx's own socket buffers (megabytes, the kernel's) would take
    # thousands of posts first.
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    slow.settimeout(5)
    slow.connect((stack.host, stack.pushes[0].port))
    slow.sendall(b"GET /api/stream/posts HTTP/1.1\r\nHost: x\r\n\r\n")
    body = "x" * 280
    others = [Listener(f"{stack.base_url}/api/stream/posts") for _ in range(3)]
    try:
        with listening(*others):
            writer = Writer(api, author)
            created: list[int] = []
            while len(created) < 2000 and slow_clients_dropped(stack) == dropped_before:
                created += [writer.post(body) for _ in range(50)]
            wait_all_received(others, created, timeout=10)
        for listener in others:
            assert_exactly_once_in_order(listener, created)
            assert len(listener.served_by) == 1  # never dropped, never reconnected
        # The slow client's connection was closed: what it reads ends (the bytes it had).
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        received, deadline = 0, time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = slow.recv(65536)
            except ConnectionResetError:
                break  # reset by the push process, with what it had not sent
            if not chunk:
                break
            received += len(chunk)
        else:
            raise AssertionError(
                f"the slow client's stream is still open after {len(created)} posts, "
                f"{received} bytes; clients dropped {slow_clients_dropped(stack) - dropped_before}"
            )
    finally:
        slow.close()
    # Each post's delivery to each of the others: arrival minus its commit (created_at).
    mine = set(created)
    delays = sorted(
        event.at
        - datetime.fromisoformat(event.data["created_at"].replace("Z", "+00:00")).timestamp()
        for listener in others
        for event in listener.posts
        if event.data["id"] in mine
    )
    p99 = delays[int(len(delays) * 0.99) - 1]
    print(
        f"slow client: dropped after {len(created)} posts ({received} bytes reached it); "
        f"the others got each post at p50 {delays[len(delays) // 2]:.3f} s, p99 {p99:.3f} s"
    )
    assert slow_clients_dropped(stack) == dropped_before + 1
    assert p99 < 1.0
