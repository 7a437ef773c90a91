"""What the scenarios do to the chaos stack: its programs stopped or killed, SQL on its nodes, the
primary lost, a poison message in the stream."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import nats
import pymysql

from loadtest.chaos.config import HealedOtherwise, launcher
from stack import processes, supervisor
from stack.settings import Stack
from stack.waiting import until


def supervise(stack: Stack, *args: str) -> None:
    """supervisorctl on STACK (its own processes only)."""
    subprocess.run(
        [
            str(stack.venv / "bin" / "supervisorctl"),
            "-c",
            str(stack.state / "supervisord.conf"),
            *args,
        ],
        capture_output=True,
        check=False,
    )


def kill_program(stack: Stack, program: str) -> None:
    """kill -9 a supervised program and its children (a gunicorn master and its workers), as a
    crash would; supervisord then restarts it. Pids come from this stack's supervisord only."""
    result = subprocess.run(
        [
            str(stack.venv / "bin" / "supervisorctl"),
            "-c",
            str(stack.state / "supervisord.conf"),
            "pid",
            program,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    master = int(result.stdout.strip())
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in [master, *map(int, children)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def admin(stack: Stack, node: str) -> pymysql.Connection[Any]:
    """An admin connection to NODE of STACK."""
    port = next(db.port for db in stack.databases if db.name == node)
    return pymysql.connect(
        host=stack.host,
        port=port,
        user=stack.env["MYSQL_ADMIN_USER"],
        autocommit=True,
        password=stack.env["MYSQL_ADMIN_PASSWORD"],
        connect_timeout=3,
        ssl_disabled=True,  # the stack's nodes have no TLS; PyMySQL would try it
    )


def sql(stack: Stack, node: str, statement: str) -> list[tuple[Any, ...]]:
    """Run STATEMENT on NODE as root."""
    conn = admin(stack, node)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
            return list(cursor.fetchall())
    finally:
        conn.close()


def kill_pid_file(stack: Stack, program: str) -> None:
    """kill -9 the process whose pid PROGRAM's pid file holds (its master, for nginx)."""
    pid = int(processes.pid_files(stack)[program].read_text().split()[0])
    os.kill(pid, signal.SIGKILL)


def lose_primary(stack: Stack) -> None:
    """kill -9 the primary's mariadbd and keep it down (its disk is gone); `make failover` 1 s
    later."""
    writer = stack.writer
    pid = int((stack.state / "mysql" / writer.name / "mysqld.pid").read_text())
    supervisor.crash(stack, f"mysql-{writer.name}", pid)
    time.sleep(1.0)
    launcher("failover")


def primary_returns(stack: Stack) -> None:
    """The configured primary starts again, rejoins through `make up`, and `make switchover`
    makes it the primary again (the next scenarios meet the stack as configured). When `make up`
    refuses it (docs/replication.md, "A former primary that is refused"), `make rebuild-node`
    brings it back instead, and the row says so: the later rows would otherwise all run on a
    stack whose configured primary cannot take writes back (a run met it on 2026-12-07)."""
    supervise(stack, "start", "mysql-primary")
    former = f"{stack.host}:{stack.primary.port}"
    said = launcher("up")
    refusal = next((line for line in said.splitlines() if f"refused {former}" in line), "")
    if refusal:
        launcher("rebuild-node", {"NODE": former})
        launcher("up")
    launcher("switchover", {"MYSQL_SWITCHOVER_TO": former})
    if refusal:
        raise HealedOtherwise(f"not back by make up: {refusal.strip()}; make rebuild-node did it")


def lose_primary_without_semi_sync(stack: Stack) -> None:
    """Semi-sync off (`make up` with MYSQL_SEMI_SYNC=off), then lose_primary."""
    launcher("up", {"MYSQL_SEMI_SYNC": "off"})
    lose_primary(stack)


POISON: dict[str, int] = {}


async def on_broker(stack: Stack, work: Callable[[Any], Any], role: str = "READER") -> Any:
    """WORK(JetStream context) on a connection of the chaos run's own, as a user of ROLE."""
    login = stack.broker_login(role)
    nc = await nats.connect(
        servers=[f"nats://{stack.host}:{n.client_port}" for n in stack.nats_nodes],
        user=login["NATS_USER"],
        password=login["NATS_PASSWORD"],
        connect_timeout=2,
    )
    try:
        return await work(nc.jetstream())
    finally:
        await nc.close()


def dead_letters(stack: Stack) -> int:
    """Messages in the dead-letter stream now."""

    async def count(js: Any) -> int:
        return int((await js.stream_info(stack.env["DEAD_LETTER_STREAM"])).state.messages)

    result: int = asyncio.run(on_broker(stack, count))
    return result


def publish_poison(stack: Stack) -> None:
    """Publish a message on the events' subjects that is no event: it can never be applied."""
    POISON["before"] = dead_letters(stack)

    async def publish(js: Any) -> None:
        poison_id = f"poison-{time.time_ns()}"
        await js.publish(
            "events.post.created", b"{not an event", headers={"Nats-Msg-Id": poison_id}
        )

    asyncio.run(on_broker(stack, publish, "RELAY"))  # only the relays' user may publish one


def poison_dead_lettered(stack: Stack, timeout: float = 30) -> str:
    """ "" once the poison message is in the dead-letter stream (within TIMEOUT), else why not."""
    if until(lambda: dead_letters(stack) > POISON["before"], timeout, "", 0.5, required=False):
        return ""
    return "the poison message was not dead-lettered"


def lease_holder(stack: Stack) -> str:
    """The relay that holds the outbox lease now (relay-N)."""
    rows = sql(stack, stack.writer.name, "SELECT holder FROM app.relay_lease WHERE name = 'outbox'")
    return str(rows[0][0]).split(":")[0]
