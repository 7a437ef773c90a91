"""Gray failures: a database node or a transaction that hangs, its port still open, costs a bounded
wait, never the whole tier (docs/reliability.md, "Frozen, not dead")."""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from unittest import mock

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.db.engines import make_engine
from stack import supervisor
from stack.settings import Stack
from tests.integration.helpers import Api, Clients, Databases, eventually
from tests.integration.streams import Listener

pytestmark = pytest.mark.integration


@dataclass
class Outcome:
    sent: float  # seconds since the load started
    seconds: float
    status: int | str
    node: str = ""


@dataclass
class MixedLoad(Clients):
    """Uncached replica reads (anonymous, past the edge), cached reads and posts (with a key), one
    thread each, until stopped: every request's outcome."""

    stack: Stack
    api_key: str
    user_id: int
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, method: str, path: str, keyed: bool) -> None:
        headers = {"X-API-Key": self.api_key} if keyed else {}
        body = {"body": "while frozen"} if method == "POST" else None
        with requests.Session() as session:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    answer = session.request(
                        method, self.stack.base_url + path, json=body, headers=headers, timeout=15
                    )
                    status: int | str = answer.status_code
                    node = answer.headers.get("X-DB-Node", "")
                except requests.RequestException as error:
                    status, node = type(error).__name__, ""
                done = time.monotonic()
                self.outcomes.append(Outcome(sent - self.started, done - sent, status, node))
                time.sleep(0.005)

    def clients(self) -> list[threading.Thread]:
        self.started = time.monotonic()
        paths = [
            ("GET", "/api/users?limit=1", False),
            ("GET", "/api/users?limit=2", False),
            ("GET", "/api/users?limit=3", False),
            ("GET", f"/api/users/{self.user_id}", True),
            ("POST", f"/api/users/{self.user_id}/posts", True),
            ("POST", f"/api/users/{self.user_id}/posts", True),
        ]
        return [threading.Thread(target=self.run, args=path) for path in paths]

    def now(self) -> float:
        return time.monotonic() - self.started


@contextmanager
def frozen(stack: Stack, program: str) -> Iterator[None]:
    """PROGRAM paused with SIGSTOP (its port open, no code of its running), woken at the end:
    its whole process group (gunicorn's workers with their master)."""
    pid = supervisor.running_pids(stack, [program])[program]
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)


def test_a_frozen_replica_costs_a_read_its_deadline_and_fails_no_request(
    stack: Stack, api: Api
) -> None:
    """Replica-1 frozen 10 s under mixed load: no request over 2 s, none failed, and the reads
    went on (to replica-2) while it slept."""
    user_id = api.create_user("Frozen", "Replica")["id"]
    eventually(lambda: replicas_serving(stack) == {"replica-1", "replica-2"}, timeout=20)
    with MixedLoad(stack, api.api_key or "", user_id) as load:
        time.sleep(1.5)
        with frozen(stack, "mysql-replica-1"):
            froze = load.now()
            time.sleep(10.0)
        woke = load.now()
        time.sleep(1.5)
    failed = [o for o in load.outcomes if o.status not in (200, 201)]
    slowest = max(load.outcomes, key=lambda o: o.seconds)
    # Reads that went to a database node ("none": answered from the cache).
    during = [o for o in load.outcomes if froze + 2 < o.sent < woke and o.node not in ("", "none")]
    print(
        f"{len(load.outcomes)} requests, {len(during)} reads while frozen; slowest "
        f"{slowest.seconds:.2f} s ({slowest.status} {slowest.node}, sent at {slowest.sent:.1f} s);"
        f" frozen {froze:.1f}-{woke:.1f} s"
    )
    assert failed == []
    assert slowest.seconds < 2.0
    assert len(during) > 100, "reads stalled while replica-1 was frozen"
    assert {o.node for o in during} <= {"replica-2", "primary"}


def replicas_serving(stack: Stack) -> set[str]:
    nodes = set()
    for _ in range(30):
        answer = requests.get(f"{stack.base_url}/api/users?limit=1", timeout=5)
        nodes.add(answer.headers.get("X-DB-Node", ""))
    return nodes


def test_a_transaction_left_idle_by_a_frozen_process_frees_its_locks_within_the_bound(
    stack: Stack, api: Api, dbs: Databases
) -> None:
    """A session of the project's own engine (as a worker's) takes a user's counter row and then
    does nothing, like a worker paused mid-transaction: the server rolls it back within
    DB_IDLE_TRANSACTION_TIMEOUT_S, and the post's counter is applied by the workers meanwhile."""
    user_id = api.create_user("Idle", "Transaction")["id"]
    bound = int(stack.env["DB_IDLE_TRANSACTION_TIMEOUT_S"])

    def post_count() -> int:
        return int(
            dbs.scalar("primary", "SELECT post_count FROM user_stats WHERE user_id = %s", user_id)
            or 0
        )

    assert api.post(f"/api/users/{user_id}/posts", json={"body": "1"}).status_code == 201
    eventually(lambda: post_count() == 1, timeout=15, interval=0.1)
    with mock.patch.dict(os.environ, stack.api_env()):
        settings = Settings()  # type: ignore[call-arg]  # every field comes from the environment
        engine = make_engine(settings, stack.api_env()["DB_PRIMARY"], pool_size=1)
    conn = engine.connect()
    try:
        conn.begin()
        conn.execute(
            text("SELECT post_count FROM user_stats WHERE user_id = :u FOR UPDATE"), {"u": user_id}
        )
        held = time.monotonic()
        assert api.post(f"/api/users/{user_id}/posts", json={"body": "2"}).status_code == 201
        eventually(lambda: post_count() == 2, timeout=bound + 15, interval=0.1)
        waited = time.monotonic() - held
        print(f"the counter was applied {waited:.1f} s after the idle transaction took its row")
        # The bound, plus a worker's lock wait (DB_LOCK_WAIT_TIMEOUT_S) ending in a retry.
        assert waited < bound + int(stack.env["DB_LOCK_WAIT_TIMEOUT_S"]) + 2
        with pytest.raises(DBAPIError):  # the server rolled back and closed the idle session
            conn.execute(text("SELECT 1"))
    finally:
        conn.close()
        engine.dispose()


def test_a_frozen_push_process_costs_a_new_stream_its_first_byte_timeout_and_no_post(
    stack: Stack, api: Api
) -> None:
    """push-1 frozen: streams opened meanwhile get their headers within 3 s (nginx gives up on
    push-1 after NGINX_STREAM_TIMEOUT_S and opens them on push-2), and each has every post made
    while it waited, since it starts from when nginx received it."""
    user_id = api.create_user("Frozen", "Push")["id"]
    url = f"{stack.base_url}/api/users/{user_id}/stream"
    with frozen(stack, "push-1"):
        asked = time.monotonic()
        listeners = [Listener(url).start() for _ in range(4)]
        # The posts follow once the streams' requests have reached nginx, while those sent to
        # push-1 still wait for it (NGINX_STREAM_TIMEOUT_S): they must not miss them.
        time.sleep(0.5)
        made = [
            api.post(f"/api/users/{user_id}/posts", json={"body": f"frozen {i}"}).json()["id"]
            for i in range(3)
        ]
        try:
            for listener in listeners:
                assert listener.connected.wait(5), "no stream within 5 s"
            ready = time.monotonic() - asked
            eventually(
                lambda: all(
                    sorted(e.data["id"] for e in listener.posts) == made for listener in listeners
                ),
                timeout=10,
                interval=0.1,
            )
        finally:
            for listener in listeners:
                listener.close()
    served = [by for listener in listeners for by in listener.served_by]
    print(f"4 streams opened while push-1 was frozen: all ready within {ready:.2f} s ({served})")
    assert ready < 3.0
    assert "push-1" not in served


# nginx's upstream servers: a replica that failed is left out this long (max_fails=1), counted in
# whole seconds by nginx's clock, so up to a second more.
FAIL_TIMEOUT_S = 2.0 + 1.0


def test_a_frozen_api_replica_costs_a_read_or_a_keyed_write_one_answer_timeout(
    stack: Stack, api_key: str, dbs: Databases
) -> None:
    """api-2 frozen (master and workers: its socket open, none of its code running): nginx gives
    up on it after NGINX_ANSWER_TIMEOUT_S and sends the request to another replica, so a read
    and a write with an Idempotency-Key are each answered within that and a second try, none
    fails, and each write is written once (the frozen replica runs it too, once woken: its key
    replays the first answer).

    Each kind is sent as a burst of six at once, while nginx counts no request in flight
    anywhere: it picks the replica with the fewest (least_conn; one nginx worker process keeps
    the counts) and breaks ties in turn, so one of the first three surely goes to the frozen
    replica. The writes go once nginx has let it back in after the reads' timeout (fail_timeout).
    (With a steady load beside the bursts, a burst could fill the frozen replica with requests
    of one kind and nginx send the other kind elsewhere: a fresh-clone run met that.)"""
    timeout_s = float(stack.env["NGINX_ANSWER_TIMEOUT_S"])
    outcomes: list[tuple[float, int | str, str]] = []
    names: list[str] = []

    def read(session: requests.Session) -> requests.Response:
        return session.get(f"{stack.base_url}/api/users?limit=2", timeout=15)

    def write(session: requests.Session) -> requests.Response:
        name = f"frozen-api-{secrets.token_hex(6)}"
        names.append(name)
        return session.post(
            f"{stack.base_url}/api/users",
            json={"name": name, "second_name": "Keyed"},
            headers={"X-API-Key": api_key, "Idempotency-Key": name},
            timeout=15,
        )

    def timed(send: Callable[[requests.Session], requests.Response]) -> None:
        with requests.Session() as session:
            sent = time.monotonic()
            try:
                status: int | str = send(session).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            outcomes.append((time.monotonic() - sent, status, send.__name__))

    def burst(send: Callable[[requests.Session], requests.Response]) -> None:
        threads = [threading.Thread(target=timed, args=(send,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    time.sleep(FAIL_TIMEOUT_S)  # no replica left out by nginx after an earlier test's faults
    with frozen(stack, "api-2"):
        froze = time.monotonic()
        burst(read)
        time.sleep(max(0.0, froze + timeout_s + FAIL_TIMEOUT_S + 0.5 - time.monotonic()))
        burst(write)
    failed = [o for o in outcomes if o[1] not in (200, 201)]
    sent_again = {
        kind: [o for o in outcomes if o[0] >= timeout_s and o[2] == kind]
        for kind in ("read", "write")
    }
    slowest = max(o[0] for o in outcomes)
    # Once woken, api-2 runs the writes it held: their keys must make them no second user.
    time.sleep(timeout_s)
    written = dbs.query(
        "primary",
        "SELECT name, COUNT(*) FROM users WHERE name LIKE 'frozen-api-%%' GROUP BY name",
    )
    copies = {name: count for name, count in written if name in names}
    print(
        f"{len(outcomes)} requests; sent again: {len(sent_again['read'])} reads, "
        f"{len(sent_again['write'])} writes; slowest {slowest:.2f} s; {len(copies)} users written"
    )
    assert failed == []
    assert sent_again["read"], "no read met the frozen replica: the test proved nothing"
    assert sent_again["write"], "no write met the frozen replica: the test proved nothing"
    assert slowest < timeout_s + 1.0
    assert set(copies) == set(names)
    assert set(copies.values()) == {1}


def test_a_write_to_a_frozen_primary_is_refused_within_its_deadline(stack: Stack, api: Api) -> None:
    """The primary frozen: each write answers 503 with Retry-After within DB_WRITE_DEADLINE_S
    (its every round trip bounded by the time left), well before nginx would give up on the API
    replica; once the primary wakes, writes go on."""
    deadline_s = float(stack.env["DB_WRITE_DEADLINE_S"])
    user_id = api.create_user("Frozen", "Primary")["id"]
    answers: list[tuple[float, int | str, str | None]] = []

    def post() -> None:
        sent = time.monotonic()
        try:
            with Api(stack.base_url, api.api_key) as own:  # a session per thread
                answer = own.post(
                    f"/api/users/{user_id}/posts", json={"body": "while frozen"}, timeout=15
                )
            status: int | str = answer.status_code
            retry_after = answer.headers.get("Retry-After")
        except requests.RequestException as error:
            status, retry_after = type(error).__name__, None
        answers.append((time.monotonic() - sent, status, retry_after))

    with frozen(stack, "mysql-primary"):
        time.sleep(0.2)
        for _ in range(2):  # the first waits out its deadline; the next ones, a breaker or not
            threads = [threading.Thread(target=post) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    print("writes to the frozen primary: " + ", ".join(f"{s} in {t:.2f} s" for t, s, _ in answers))
    assert all(status == 503 and retry_after for _, status, retry_after in answers)
    assert max(seconds for seconds, _, _ in answers) < deadline_s + 0.5
    eventually(
        lambda: api.post(f"/api/users/{user_id}/posts", json={"body": "woken"}).status_code == 201,
        timeout=20,
        interval=0.5,
    )
