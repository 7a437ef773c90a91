"""The launcher is idempotent (`up` on a running or stopped stack keeps every piece of data), and
heals what it started: orphans of a killed nginx master or supervisord, a graceful stop."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from stack import logrotate, processes, rolling
from stack.settings import Stack
from tests.integration.conftest import launcher
from tests.integration.helpers import Api, Databases, eventually

pytestmark = pytest.mark.integration


def snapshot(dbs: Databases) -> tuple[object, ...]:
    return (
        dbs.scalar("primary", "SELECT COUNT(*) FROM users"),
        dbs.scalar("primary", "SELECT COALESCE(MAX(updated_at), 0) FROM users"),
        tuple(dbs.data_checksum()),
    )


def test_up_twice_leaves_the_same_data(api: Api, dbs: Databases) -> None:
    user = api.create_user("Katherine", "Johnson")
    before = snapshot(dbs)
    output = launcher("up").stdout
    assert "datadir exists, kept" in output
    assert snapshot(dbs) == before
    assert api.get(f"/api/users/{user['id']}").json() == user


# `make up` on a running stack: no request waits longer than this while every API replica's
# workers are replaced (gunicorn's own reload, HUP, held requests up to 4.7 s: docs/operations.md).
UP_REQUEST_BOUND_S = 1.5


def nginx_workers_of(stack: Stack) -> set[int]:
    """The worker processes of the stack's nginx master."""
    master = processes.read_pid(stack.state / "run" / "nginx.pid")
    assert master is not None
    return {pid for pid, (ppid, _, _) in processes.scan().items() if ppid == master}


def test_up_on_a_running_stack_replaces_every_api_worker_and_holds_no_request(
    stack: Stack,
) -> None:
    before = {api.name: rolling.ready(rolling.ready_dir(stack, api.name)) for api in stack.apis}
    assert all(before.values()), before
    nginx_workers = nginx_workers_of(stack)
    stop, answers = threading.Event(), list[tuple[float, float, int | str]]()

    def read() -> None:
        # A reset or a timeout is an answer too, and a wrong one: recorded, never lost with
        # the thread.
        session = requests.Session()
        while not stop.is_set():
            started = time.monotonic()
            status: int | str
            try:
                status = session.get(f"{stack.base_url}/api/users?limit=1", timeout=15).status_code
            except requests.RequestException as error:
                status = repr(error)
            answers.append((started, time.monotonic() - started, status))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        time.sleep(1)
        launcher("up")
        time.sleep(1)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    after = {api.name: rolling.ready(rolling.ready_dir(stack, api.name)) for api in stack.apis}
    for name, old in before.items():
        assert len(after[name]) == len(old), (name, old, after)
        assert old.isdisjoint(after[name]), (name, old, after)
    assert {status for *_, status in answers} == {200}
    # nothing changed in nginx's config: it was not reloaded (a reload closes idle keepalive
    # connections under the clients, nginx.config_changed)
    assert nginx_workers_of(stack) == nginx_workers
    slowest = max(took for _, took, _ in answers)
    print(f"\nup on a running stack: {len(answers)} reads, the slowest {slowest:.2f}s")
    assert slowest <= UP_REQUEST_BOUND_S


def test_up_on_a_stopped_stack_keeps_the_data(api: Api, dbs: Databases) -> None:
    user = api.create_user("Margaret", "Hamilton")
    dbs.wait_replicated()
    before = snapshot(dbs)
    launcher("down")
    launcher("up")
    assert snapshot(dbs) == before
    assert api.get(f"/api/users/{user['id']}").json() == user


def test_status_lists_every_process(dbs: Databases) -> None:
    output = launcher("status").stdout
    names = [
        "mysql-primary",
        "mysql-replica-1",
        "mysql-replica-2",
        "redis",
        "heartbeat",
        "api-1",
        "api-2",
        "api-3",
        "nginx",
    ]
    for name in names:
        assert any(line.startswith(name) and "RUNNING" in line for line in output.splitlines())


class Writer:
    """Threads creating users with unique names through nginx, recording what each was told."""

    def __init__(self, stack: Stack, api_key: str, tag: str, threads: int = 4) -> None:
        self.stack, self.api_key, self.tag = stack, api_key, tag
        self.acknowledged: list[str] = []  # 201: the client was told it committed
        self.failed: list[str] = []  # no answer: reset, refused, timed out
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(threads)]

    def run(self, number: int) -> None:
        with Api(self.stack.base_url, self.api_key) as client:
            count = 0
            while not self.stopping.is_set():
                name = f"{self.tag}-{number}-{count}"
                count += 1
                try:
                    response = client.post(
                        "/api/users", json={"name": name, "second_name": "W"}, timeout=10
                    )
                except requests.RequestException:
                    self.failed.append(name)
                    time.sleep(0.05)
                    continue
                if response.status_code == 201:
                    self.acknowledged.append(name)
                else:
                    time.sleep(0.05)

    def __enter__(self) -> Writer:
        for thread in self.threads:
            thread.start()
        eventually(lambda: len(self.acknowledged) >= 20, timeout=20)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)


def committed(dbs: Databases, tag: str) -> set[str]:
    rows = dbs.query("primary", "SELECT name FROM users WHERE name LIKE %s", f"{tag}-%")
    return {row[0] for row in rows}


def healthy(stack: Stack) -> None:
    """What up promises: no orphan, every program RUNNING, every port held by one of them."""
    assert processes.orphans(stack) == []
    assert processes.strangers_on_ports(stack) == {}
    status = launcher("status").stdout
    assert "orphans" not in status
    assert requests.get(f"{stack.internal_url}/readyz", timeout=10).status_code == 200


def test_kill_9_of_the_nginx_master_is_healed_by_up(
    stack: Stack, api_key: str, dbs: Databases
) -> None:
    """The orphaned worker keeps the port, so supervisord cannot restart nginx; up stops it."""
    master = int((stack.state / "run" / "nginx.pid").read_text())
    with Writer(stack, api_key, "nginx-kill") as writer:
        os.kill(master, signal.SIGKILL)
        left = eventually(lambda: processes.orphans(stack), timeout=10)
        assert {p.program for p in left} == {"nginx"}
        assert "orphans" in launcher("status").stdout
        output = launcher("up").stdout
        assert "orphans" in output
    healthy(stack)
    assert int((stack.state / "run" / "nginx.pid").read_text()) != master
    dbs.wait_replicated()
    assert set(writer.acknowledged) <= committed(dbs, "nginx-kill")


def test_kill_9_of_supervisord_is_healed_by_up(stack: Stack, api_key: str, dbs: Databases) -> None:
    """Every server runs on, orphaned: up stops them all by pid, then starts them supervised."""
    supervisord = processes.supervisord_alive(stack)
    assert supervisord is not None
    with Writer(stack, api_key, "supervisord-kill") as writer:
        os.kill(supervisord, signal.SIGKILL)
        eventually(lambda: processes.supervisord_alive(stack) is None, timeout=10)
        programs = {p.program for p in processes.orphans(stack)}
        assert {"nginx", "redis", "heartbeat", "mysql-primary"} <= programs
        launcher("up")
    healthy(stack)
    dbs.wait_replicated()
    assert set(writer.acknowledged) <= committed(dbs, "supervisord-kill")


def test_down_under_writes_answers_every_committed_write(
    stack: Stack, api_key: str, dbs: Databases
) -> None:
    """nginx stops gracefully (QUIT): a write that committed always gets its 201."""
    try:
        with Writer(stack, api_key, "down-under-load") as writer:
            launcher("down")
            assert processes.stack_processes(stack) == []
    finally:
        launcher("up")
    stored = committed(dbs, "down-under-load")
    assert set(writer.acknowledged) <= stored
    assert stored & set(writer.failed) == set()


def test_nginx_reopens_its_rotated_logs_and_loses_no_line(stack: Stack, api: Api) -> None:
    logs = stack.state / "logs"
    access, renamed = logs / "nginx-access.log", logs / "nginx-access.log.1"
    api.get("/healthz", headers={"X-Request-ID": "before-rotation"})
    eventually(lambda: "before-rotation" in access.read_text(), timeout=5)
    rotated = logrotate.rotate_all(logs, 0, 3, logrotate.nginx_reopener(stack.state))
    assert access in rotated
    sent: list[str] = []

    def lands_in_the_new_file() -> bool:
        """One more request; has nginx reopened (its master and then each worker) by now?"""
        sent.append(f"after-rotation-{len(sent)}")
        api.get("/healthz", headers={"X-Request-ID": sent[-1]})
        text = access.read_text() if access.exists() else ""
        return any(request_id in text for request_id in sent)  # flushed within ~1 s

    eventually(lands_in_the_new_file, timeout=10, interval=0.3)

    def every_line_written() -> bool:
        """Each request's line is in one file or the other (nginx flushes within a second)."""
        text = access.read_text() + renamed.read_text()
        return all(request_id in text for request_id in ["before-rotation", *sent])

    eventually(every_line_written, timeout=5)
    assert "before-rotation" in renamed.read_text()
