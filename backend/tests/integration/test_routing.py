"""Lag-aware routing with two replicas: spread, ejection within a second, hysteresis, bulkhead."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from redis import Redis

from stack.settings import Stack
from tests.integration.conftest import supervisorctl
from tests.integration.helpers import Api, Databases, eventually, every_worker_admits

pytestmark = pytest.mark.integration


def read_node(stack: Stack) -> str:
    """The node that served one uncached read (a fresh client: no consistency token)."""
    response = requests.get(f"{stack.base_url}/api/users?limit=1", timeout=5)
    assert response.status_code == 200, response.text
    return response.headers["X-DB-Node"]


def nodes_seen(stack: Stack, reads: int = 30) -> set[str]:
    return {read_node(stack) for _ in range(reads)}


def wait_all_admitted(stack: Stack, timeout: float = 20) -> None:
    """Until every worker of every API replica routes reads to both replicas.

    Reads alone cannot show it: a replica seen in 30 reads was admitted by some worker, while
    others may still wait out their calm spell after the test before (and send reads to the
    primary when the other replica stops, which a timing assertion would blame on this test).
    """
    eventually(lambda: every_worker_admits(stack, {"replica-1", "replica-2"}), timeout=timeout)


def test_reads_spread_over_both_replicas(stack: Stack) -> None:
    wait_all_admitted(stack)
    eventually(lambda: nodes_seen(stack) == {"replica-1", "replica-2"})


class Switch(float):
    """Seconds until reads were served only by the wanted nodes; the reads that were not."""

    strays: list[tuple[float, str, str]]

    def __repr__(self) -> str:
        return f"{float(self):.2f}s (reads elsewhere: t, node, API replica: {self.strays})"


def seconds_until_only(stack: Stack, nodes: set[str], timeout: float = 5) -> Switch:
    """Seconds from now until the first of 20 reads in a row served only by NODES was sent.

    Measured to the read that starts the streak, not to the end of the streak: on a loaded
    machine 20 reads take a while, and that is not the time the routing took to change. The
    result also lists the reads served elsewhere, so a slow switch shows which API replica
    still routed there, and when.
    """
    started = time.monotonic()
    streak_started, streak, strays = started, 0, list[tuple[float, str, str]]()
    while time.monotonic() - started < timeout:
        sent = time.monotonic()
        response = requests.get(f"{stack.base_url}/api/users?limit=1", timeout=5)
        assert response.status_code == 200, response.text
        node = response.headers["X-DB-Node"]
        if node in nodes:
            streak_started, streak = (sent if streak == 0 else streak_started), streak + 1
            if streak == 20:
                switch = Switch(streak_started - started)
                switch.strays = strays
                return switch
        else:
            streak = 0
            strays.append((round(sent - started, 2), node, response.headers["X-Served-By"]))
    raise AssertionError(f"reads not only by {sorted(nodes)} within {timeout}s: {strays}")


def serves_only(stack: Stack, nodes: set[str], seconds: float) -> bool:
    """Did NODES serve every read sent for SECONDS (at least 20 reads)?"""
    started, reads = time.monotonic(), 0
    while time.monotonic() - started < seconds or reads < 20:
        if read_node(stack) not in nodes:
            return False
        reads += 1
    return True


def stays_only(stack: Stack, nodes: set[str], seconds: float) -> int:
    """Read for SECONDS and assert that NODES served every read; the number of reads."""
    started, reads = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        node = read_node(stack)
        assert node in nodes, f"{node} served a read {time.monotonic() - started:.2f}s in"
        reads += 1
    return reads


@pytest.fixture
def replica_1_sql_thread_restarted(dbs: Databases) -> Iterator[None]:
    """Whatever the test does to replica-1's SQL thread, it runs again afterwards."""
    yield
    dbs.query("replica-1", "START REPLICA SQL_THREAD")


def test_a_stalled_replica_loses_its_reads_within_a_second_and_returns(
    stack: Stack, dbs: Databases, replica_1_sql_thread_restarted: None
) -> None:
    wait_all_admitted(stack)
    dbs.query("replica-1", "STOP REPLICA SQL_THREAD")
    assert seconds_until_only(stack, {"replica-2"}) < 1.0
    dbs.query("replica-1", "START REPLICA SQL_THREAD")
    wait_all_admitted(stack)


def test_a_stopped_replica_loses_its_reads_at_once_and_returns(stack: Stack, api: Api) -> None:
    wait_all_admitted(stack)
    supervisorctl("stop", "mysql-replica-2")
    try:
        assert seconds_until_only(stack, {"replica-1"}) < 1.0
        assert all(api.get("/api/users?limit=1").status_code == 200 for _ in range(20))
        assert api.readyz().json()["checks"]["replica-2"]["status"] == "down"
    finally:
        supervisorctl("start", "mysql-replica-2")
    wait_all_admitted(stack, timeout=30)


def test_a_lagging_replica_is_readmitted_only_after_a_calm_spell(
    stack: Stack, dbs: Databases, replica_1_sql_thread_restarted: None
) -> None:
    wait_all_admitted(stack)
    dbs.query("replica-1", "STOP REPLICA SQL_THREAD")
    seconds_until_only(stack, {"replica-2"})
    # The reads above reached only some API workers, and a worker not reached may not have
    # polled yet. Keep the replica stalled until a whole spell of two poll intervals passes
    # with every read elsewhere, so every worker has seen the stall: a worker that never
    # ejected it would serve it again at once, and the check below would prove nothing.
    spell = 2 * float(stack.env["REPLICA_POLL_INTERVAL_S"])
    eventually(lambda: serves_only(stack, {"replica-2"}, spell), timeout=10)
    dbs.query("replica-1", "START REPLICA SQL_THREAD")
    dbs.wait_replicated()
    caught_up = time.monotonic()
    eventually(lambda: "replica-1" in nodes_seen(stack, 10), timeout=20)
    # Re-admission waits for REPLICA_READMIT_AFTER_S (2 s) of low lag after catching up.
    assert time.monotonic() - caught_up >= 1.5


@pytest.fixture
def no_replica_admitted(dbs: Databases) -> Iterator[None]:
    for replica in dbs.stack.replicas:
        dbs.query(replica.name, "STOP REPLICA SQL_THREAD")
    try:
        yield
    finally:
        for replica in dbs.stack.replicas:
            dbs.query(replica.name, "START REPLICA SQL_THREAD")
        wait_all_admitted(dbs.stack)


def test_without_healthy_replicas_reads_fall_back_to_the_primary(
    stack: Stack, no_replica_admitted: None
) -> None:
    assert seconds_until_only(stack, {"primary"}) < 1.0


def test_a_full_primary_bulkhead_answers_503_at_once(
    stack: Stack, no_replica_admitted: None
) -> None:
    seconds_until_only(stack, {"primary"})
    redis = Redis(host=stack.host, port=stack.redis_port, password=stack.env["REDIS_PASSWORD"])
    limit = int(stack.env["READ_FALLBACK_MAX"])
    now_ms = int(redis.time()[0]) * 1000
    # Other processes' fallback reads in flight, as the bulkhead records them.
    redis.zadd("bulkhead:primary-reads", {f"held-{i}": now_ms for i in range(limit)})
    try:
        response = requests.get(f"{stack.base_url}/api/users?limit=1", timeout=5)
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["Retry-After"] == "1"
        assert response.elapsed.total_seconds() < 0.5
    finally:
        redis.delete("bulkhead:primary-reads")
    assert read_node(stack) == "primary"


def heartbeat_age(dbs: Databases, node: str) -> float:
    """Seconds since the heartbeat row held by NODE was written on the primary."""
    age = dbs.scalar(
        node, "SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) / 1e6 FROM heartbeat"
    )
    return float(age)


@pytest.fixture
def heartbeat_stopped(stack: Stack, dbs: Databases) -> Iterator[float]:
    """The heartbeat writer stopped, until every copy of its row is older than the eject
    threshold by two poll intervals (every worker has polled such a copy); yields the threshold."""
    eject = float(stack.env["REPLICA_LAG_EJECT_S"])
    margin = 2 * float(stack.env["REPLICA_POLL_INTERVAL_S"])
    wait_all_admitted(stack)
    supervisorctl("stop", "heartbeat")
    try:
        eventually(lambda: heartbeat_age(dbs, "primary") > eject + margin, timeout=10)
        yield eject
    finally:
        supervisorctl("start", "heartbeat")
        eventually(lambda: heartbeat_age(dbs, "primary") < eject, timeout=10)
    wait_all_admitted(stack)


def test_a_stopped_heartbeat_writer_ejects_no_replica_that_keeps_up(
    stack: Stack, api: Api, heartbeat_stopped: float
) -> None:
    # Every read is served by a replica, by both in turn, for longer than the eject threshold.
    stays_only(stack, {"replica-1", "replica-2"}, 2 * heartbeat_stopped)
    assert nodes_seen(stack) == {"replica-1", "replica-2"}
    ready = api.readyz().json()
    assert ready["checks"]["heartbeat"]["status"] == "stalled"
    assert ready["checks"]["heartbeat"]["age_s"] > heartbeat_stopped
    assert {ready["checks"][name]["status"] for name in ("replica-1", "replica-2")} == {"ok"}
    assert ready["degraded"] == ["heartbeat"]


def test_with_the_heartbeat_writer_stopped_a_replica_that_falls_behind_is_still_ejected(
    stack: Stack, dbs: Databases, heartbeat_stopped: float
) -> None:
    dbs.query(
        "primary",
        "INSERT INTO users (name, second_name, created_at, updated_at)"
        " VALUES ('Row', 'Lock', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
    )
    user_id = dbs.scalar("primary", "SELECT MAX(id) FROM users")
    dbs.wait_replicated()
    # A transaction on replica-1 holds the row's lock, so its SQL thread (still running) cannot
    # apply the next change to that row: the replica falls behind while the heartbeat says nothing.
    holder = dbs.connect("replica-1")
    try:
        holder.begin()
        with holder.cursor() as cursor:
            cursor.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))
        dbs.query("primary", "UPDATE users SET second_name = 'Behind' WHERE id = %s", user_id)
        # Measuring the lag means waiting up to the threshold for the replica to catch up.
        assert seconds_until_only(stack, {"replica-2"}) < heartbeat_stopped + 1.0
    finally:
        holder.rollback()
        holder.close()
    dbs.wait_replicated()
    wait_all_admitted(stack)
