"""Retries of real transient faults, and secrets that never reach a log."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from app.db.engines import capped_bounds
from stack.settings import Stack
from tests.integration.helpers import Api, Databases, eventually, metric_total

pytestmark = pytest.mark.integration
READ_RETRIES = 'db_retries_total{kind="read",outcome="retried"}'
WRITE_RETRIES = 'db_retries_total{kind="write",outcome="retried"}'


def kill_app_connections(dbs: Databases, node: str) -> int:
    """KILL every connection of the application user on NODE (as a crash or a DBA would)."""
    user = dbs.stack.env["MYSQL_APP_USER"]
    ids = [
        row[0]
        for row in dbs.query(
            node, "SELECT id FROM information_schema.processlist WHERE user = %s", user
        )
    ]
    for connection_id in ids:
        dbs.query(node, f"KILL CONNECTION {int(connection_id)}")
    return len(ids)


def test_reads_on_killed_connections_are_retried_and_never_fail(
    api: Api, stack: Stack, dbs: Databases
) -> None:
    for _ in range(30):  # fill every worker's pools
        api.get("/api/users?limit=2")
    before = metric_total(stack, READ_RETRIES)
    killed = sum(kill_app_connections(dbs, node.name) for node in stack.databases)
    assert killed > 0
    answers = [api.get(f"/api/users?limit=2&after={n}") for n in range(60)]
    assert [a.status_code for a in answers] == [200] * 60
    assert metric_total(stack, READ_RETRIES) > before


def read_node(stack: Stack) -> str:
    response = requests.get(f"{stack.base_url}/api/users?limit=1", timeout=5)
    assert response.status_code == 200, response.text
    return response.headers["X-DB-Node"]


def test_killed_connections_do_not_take_a_replica_out_of_rotation(
    stack: Stack, dbs: Databases
) -> None:
    replicas = {replica.name for replica in stack.replicas}
    eventually(lambda: {read_node(stack) for _ in range(30)} == replicas, timeout=20)
    for replica in replicas:  # the monitors' connections die with the others
        assert kill_app_connections(dbs, replica) > 0
    # Ejection would send reads to the primary. Watch for longer than a few polls.
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert read_node(stack) in replicas


def test_a_write_that_hits_a_lock_wait_timeout_is_retried_whole_and_succeeds(
    api: Api, stack: Stack, dbs: Databases
) -> None:
    """A row lock held longer than the API's own lock wait (DB_LOCK_WAIT_TIMEOUT_S, capped at
    half the write's deadline: each of its sessions sets it): the write times out waiting, is run
    again whole, and succeeds once the lock is gone, within its deadline."""
    user = api.create_user("Locked", "Row")
    write_deadline_s = float(stack.env["DB_WRITE_DEADLINE_S"])
    lock_wait, _ = capped_bounds(
        int(stack.env["DB_LOCK_WAIT_TIMEOUT_S"]),
        int(stack.env["DB_IDLE_TRANSACTION_TIMEOUT_S"]),
        write_deadline_s,
    )
    holder = dbs.connect("primary")
    try:
        before = metric_total(stack, WRITE_RETRIES)
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user["id"],))
            patched: list[requests.Response] = []
            releaser = threading.Timer(lock_wait + 0.5, holder.rollback)
            releaser.start()
            started = time.monotonic()
            patched.append(api.patch(f"/api/users/{user['id']}", json={"name": "Unlocked"}))
            elapsed = time.monotonic() - started
            releaser.join()
        assert patched[0].status_code == 200, patched[0].text
        assert patched[0].json()["name"] == "Unlocked"
        assert elapsed >= lock_wait  # it did wait for the lock, then went again
        assert elapsed < write_deadline_s
        assert metric_total(stack, WRITE_RETRIES) > before
    finally:
        holder.close()


def test_no_secret_reaches_a_log(api: Api, stack: Stack, api_key: str) -> None:
    marker = f"secrets-check-{time.monotonic_ns()}"
    headers = {"X-Request-ID": marker, "X-API-Key": api_key}
    api.post("/api/users", json={"name": "Log", "second_name": "Check"}, headers=headers)
    api.get("/api/users/1", headers={"X-API-Key": api_key[:-4] + "xxxx"})
    api.post("/api/users", json={"name": "Log"}, headers={"X-API-Key": "zk_bad"})
    logs = sorted((stack.state / "logs").glob("*.log"))

    def logged() -> bool:
        return all(marker in p.read_text(errors="replace") for p in logs if p.name in WITH_IDS)

    eventually(logged, timeout=10, interval=0.3)  # nginx flushes its buffer every second
    secrets = {
        "API key secret": api_key[16:],
        "MYSQL_APP_PASSWORD": stack.env["MYSQL_APP_PASSWORD"],
        "MYSQL_ADMIN_PASSWORD": stack.env["MYSQL_ADMIN_PASSWORD"],
        "MYSQL_REPL_PASSWORD": stack.env["MYSQL_REPL_PASSWORD"],
        "APP_SECRET_KEY": stack.env["APP_SECRET_KEY"],
    }
    for path in [*logs, *sorted((stack.state / "logs").glob("*.err"))]:
        text = Path(path).read_text(errors="replace")
        leaked = [name for name, secret in secrets.items() if secret in text]
        assert not leaked, f"{path.name} contains {leaked}"


WITH_IDS = {"nginx-access.log"}
