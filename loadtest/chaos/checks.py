"""One scenario under load, and what is checked after it: lost writes and events, the recovery,
the longest wait of an event."""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

import pymysql
import requests

from loadtest.chaos.clients import Tally, client, keyed_session
from loadtest.chaos.config import CLIENTS, HealedOtherwise
from loadtest.chaos.faults import sql
from loadtest.chaos.scenarios import Scenario
from stack.keys import ensure_key
from stack.settings import Stack


def event_wait(stack: Stack, acknowledged: dict[int, str]) -> float:
    """The longest time, in seconds, an acknowledged user's event waited in the outbox before the
    broker acknowledged it (the publish gap a fault causes)."""
    if not acknowledged:
        return 0.0
    ids = ",".join(str(i) for i in acknowledged)
    query = (
        "SELECT COALESCE(MAX(TIMESTAMPDIFF(MICROSECOND, created_at, published_at)), 0) / 1e6 "  # noqa: S608 (ints)
        "FROM app.outbox WHERE subject = 'events.user.created' "
        f"AND JSON_VALUE(payload, '$.aggregate_id') IN ({ids})"
    )
    return round(float(sql(stack, stack.writer.name, query)[0][0]), 1)


def lost_events(stack: Stack, acknowledged: dict[int, str], timeout: float = 90) -> int:
    """Acknowledged users whose user.created event no worker applied (user_stats has no row),
    once the outbox has drained and the workers caught up, within TIMEOUT."""
    if not acknowledged:
        return 0
    ids = ",".join(str(i) for i in acknowledged)
    query = f"SELECT COUNT(*) FROM app.user_stats WHERE user_id IN ({ids})"  # noqa: S608 (ints)
    deadline = time.monotonic() + timeout
    while True:
        applied = int(sql(stack, stack.writer.name, query)[0][0])
        if applied == len(acknowledged) or time.monotonic() > deadline:
            return len(acknowledged) - applied
        time.sleep(0.5)


def recovered(base: str, api_key: str, timeout: float = 60) -> float:
    """Seconds until a write and the read of it succeed again."""
    started, session = time.monotonic(), keyed_session(api_key)
    while time.monotonic() - started < timeout:
        try:
            written = session.post(
                f"{base}/api/users", json={"name": "probe", "second_name": "R"}, timeout=5
            )
            if written.status_code == 201:
                user_id = written.json()["id"]
                if session.get(f"{base}/api/users/{user_id}", timeout=5).status_code == 200:
                    return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return float("inf")


def answers(stack: Stack, node: str) -> bool:
    """Does NODE answer (a node lost for good does not)?"""
    try:
        sql(stack, node, "SELECT 1")
    except pymysql.err.OperationalError:
        return False
    return True


def lost_writes(stack: Stack, acknowledged: dict[int, str]) -> int:
    """Acknowledged writes missing or different on the primary (the one that takes writes now)
    or, once caught up, any replica that answers."""
    if not acknowledged:
        return 0
    ids = ",".join(str(i) for i in acknowledged)
    writer = stack.writer.name
    target = sql(stack, writer, "SELECT @@gtid_binlog_pos")[0][0]
    lost = 0
    for node in [db.name for db in stack.databases if answers(stack, db.name)]:
        if node != writer:
            sql(stack, node, f"SELECT MASTER_GTID_WAIT('{target}', 60)")
        rows = dict(sql(stack, node, f"SELECT id, name FROM app.users WHERE id IN ({ids})"))  # noqa: S608 (ids are ints)
        lost += sum(1 for user_id, name in acknowledged.items() if rows.get(user_id) != name)
    return lost


def run_scenario(
    stack: Stack, scenario: Scenario, fault_s: float, api_key: str | None = None
) -> dict[str, Any]:
    """Load, fault, heal, recover, verify: one row of the report (API_KEY: the writers' key)."""
    tally, stop = Tally(), threading.Event()
    api_key = api_key or ensure_key(stack, "chaos", "critical")
    clients = [
        threading.Thread(target=client, args=(stack.base_url, api_key, tally, stop))
        for _ in range(CLIENTS)
    ]
    for thread in clients:
        thread.start()
    time.sleep(1.0)
    problem = ""
    try:
        scenario.inject(stack)
        time.sleep(fault_s)
    finally:
        # A heal that fails (a launcher command refused) is the row's problem, not the end of
        # the run: the clients are stopped, the row is reported, the next scenario runs.
        try:
            scenario.heal(stack)
        except (subprocess.CalledProcessError, OSError) as error:
            problem = f"healing failed: {healing_error(error)}"
        except HealedOtherwise as error:
            problem = str(error)[:300]
    if not problem and scenario.check:
        problem = scenario.check(stack)
    recovery = recovered(stack.base_url, api_key)
    time.sleep(1.0)
    stop.set()
    for thread in clients:
        thread.join()
    return {
        "scenario": scenario.name,
        "requests": tally.requests,
        "failed reads": tally.failed_reads,
        "failed writes": tally.failed_writes,
        "refused writes (503)": tally.refused_writes,
        "refused own reads (503)": tally.refused_own_reads,
        "acknowledged writes": len(tally.acknowledged),
        "lost writes": lost_writes(stack, tally.acknowledged),
        "lost events": lost_events(stack, tally.acknowledged),
        "longest event wait s": event_wait(stack, tally.acknowledged),
        "stale reads": tally.stale_reads,
        "recovery s": round(recovery, 1),
        "slowest s": round(tally.slowest_s, 2),
        "slowest_bound_s": scenario.slowest_bound_s,
        "writes_refused_ok": scenario.writes_refused,
        "entry_replaced": scenario.entry_replaced,
        "loss_possible": scenario.loss_possible,
        "failures": tally.failures,
        "evidence": tally.evidence,
        "problem": problem,
    }


def healing_error(error: BaseException) -> str:
    """What a failed heal said: its command's last error line, or the error itself."""
    stderr = getattr(error, "stderr", None) or ""
    lines = [line for line in str(stderr).splitlines() if "error" in line.lower()]
    return (lines[-1] if lines else repr(error))[:300]
