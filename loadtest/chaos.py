"""`make chaos`: bounded load on a stack of its own while faults are injected, one at a time.

Scenarios: kill -9 of an API replica, a stopped DB replica, a stalled replica SQL thread, Redis
killed, the primary stopped and restarted, kill -9 of the primary's mariadbd, of the nginx master
and of supervisord (the last two healed by the launcher's `up`), the primary lost for good and
replaced by `make failover` (then back through `make up` and `make switchover`), a switchover and
back, and last, the same loss with semi-sync off, which may lose acknowledged writes. During each,
client threads on 127.0.0.1 write users (each acknowledged write is recorded with its content),
read them back with their consistency token (an older value is a stale read), and read other users.
Afterwards every acknowledged write is checked on the primary and, once caught up, on every
replica. Writes the stack refused (503 with Retry-After while the primary is down) are counted, not
lost: they were never acknowledged. The table goes to docs/reliability.md (CHAOS_REPORT=0 leaves it
alone; CHAOS_ONLY=text runs only the scenarios whose name holds it, and rewrites only the sections
all of whose rows ran). A failed read of a client's
own write is shown on stderr with the headers of the write and of the read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats
import pymysql
import requests

from loadtest.docs import replace_section
from stack import processes, queue, supervisor
from stack.keys import ensure_key
from stack.settings import REPO, Stack, load_stack

CHAOS_ENV = {
    "STACK_DIR": ".stack-chaos",
    "NGINX_PORT": "28080",
    "NGINX_INTERNAL_PORT": "28081",
    # The chaos clients run here: capacity and faults are measured, not nginx's limiter.
    "NGINX_RATE_LIMIT_EXEMPT": "127.0.0.1/32",
    "API_BASE_PORT": "28001",
    "MYSQL_PRIMARY_PORT": "23308",
    "MYSQL_REPLICA_PORTS": "23307,23309",
    "REDIS_PORT": "26380",
    "NATS_CLIENT_PORTS": "24222,24223,24224",
    "NATS_CLUSTER_PORTS": "26222,26223,26224",
    "RELAY_METRICS_BASE_PORT": "29101",
    "WORKER_METRICS_BASE_PORT": "29111",
    "EDGE_PURGER_METRICS_PORT": "29121",
    "PUSH_BASE_PORT": "28101",
    "REPLICAS": "2",
    "API_REPLICAS": "3",
    "APP_ENV": "test",
    # All chaos clients share one critical key; its limit is not what this run is about.
    "RATE_LIMIT_CRITICAL_PER_S": "1000",
    "RATE_LIMIT_CRITICAL_BURST": "2000",
}
FAULT_S = float(os.environ.get("CHAOS_FAULT_SECONDS", "8"))
CLIENTS = int(os.environ.get("CHAOS_CLIENTS", "4"))


@dataclass
class Tally:
    """What the clients saw during one scenario."""

    requests: int = 0
    failed_reads: int = 0
    failed_writes: int = 0
    refused_writes: int = 0  # 503 + Retry-After: a clear "not done", never acknowledged
    # 503 + Retry-After to a read of the client's own write that only the (stopped) primary
    # holds yet: refusing beats answering with data older than the client's write.
    refused_own_reads: int = 0
    stale_reads: int = 0
    slowest_s: float = 0.0  # the longest any request took (a timeout counts as its 5 s)
    acknowledged: dict[int, str] = field(default_factory=dict)  # user id -> last acked name
    failures: dict[str, int] = field(default_factory=dict)  # what failed, for the report
    # The first few failed reads of the client's own write, with what the API said of them.
    evidence: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def keyed_session(api_key: str) -> requests.Session:
    """A session that sends API_KEY with every request."""
    session = requests.Session()
    session.headers["X-API-Key"] = api_key
    return session


def client(base: str, api_key: str, tally: Tally, stop: threading.Event) -> None:
    """Write, read back with the token, read others; until STOP."""
    session = keyed_session(api_key)
    while not stop.is_set():
        name = f"chaos-{random.getrandbits(40):x}"
        sent = time.monotonic()
        try:
            written = session.post(
                f"{base}/api/users", json={"name": name, "second_name": "C"}, timeout=5
            )
        except requests.RequestException:
            written = None
        with tally.lock:
            tally.slowest_s = max(tally.slowest_s, time.monotonic() - sent)
            tally.requests += 1
            if written is not None and written.status_code == 201:
                tally.acknowledged[written.json()["id"]] = name
            elif (
                written is not None
                and written.status_code == 503
                and "Retry-After" in written.headers
            ):
                tally.refused_writes += 1
            else:
                tally.failed_writes += 1
                outcome = f"write: {written.status_code if written is not None else 'no answer'}"
                tally.failures[outcome] = tally.failures.get(outcome, 0) + 1
        if written is not None and written.status_code == 201:
            read_back(session, base, written, name, tally)
        time.sleep(0.02)


def read_back(session: requests.Session, base: str, written: Any, name: str, tally: Tally) -> None:
    """Read the client's own write with its token, and a random other user."""
    token = written.headers.get("X-Consistency-Token", "")
    user_id = written.json()["id"]
    with tally.lock:
        others = list(tally.acknowledged)
    reads = (
        ("own", f"/api/users/{user_id}", name),
        ("other", f"/api/users/{random.choice(others)}", None),
    )
    for kind, path, expect in reads:
        read: Any = "no answer"
        sent = time.monotonic()
        try:
            read = session.get(base + path, headers={"X-Consistency-Token": token}, timeout=5)
            ok, body = read.status_code == 200, read.json() if read.status_code == 200 else {}
            outcome = f"{kind} read: {read.status_code}"
        except requests.RequestException as error:
            ok, body, outcome = False, {}, f"{kind} read: {type(error).__name__}"
        refused = kind == "own" and not ok and outcome.endswith("503")
        with tally.lock:
            tally.slowest_s = max(tally.slowest_s, time.monotonic() - sent)
            tally.requests += 1
            tally.refused_own_reads += refused
            tally.failed_reads += not ok and not refused
            tally.stale_reads += bool(ok and expect is not None and body.get("name") != expect)
            if not ok and not refused:
                tally.failures[outcome] = tally.failures.get(outcome, 0) + 1
                if kind == "own" and len(tally.evidence) < EVIDENCE and not isinstance(read, str):
                    tally.evidence.append(evidence(user_id, written, read))


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


@dataclass(frozen=True)
class Scenario:
    """A fault: how to inject it, how to heal it, and whether writes may be refused meanwhile."""

    name: str
    inject: Callable[[Stack], object]
    heal: Callable[[Stack], object]
    writes_refused: bool = False
    # The single entry point (nginx), or everything, is replaced meanwhile: requests may fail
    # while it is; none may be lost or stale.
    entry_replaced: bool = False
    # What the scenario shows is that acknowledged writes can be lost (semi-sync off): the count
    # is the result, not a failure.
    loss_possible: bool = False
    # Checked once the fault is healed: "" when what the scenario must show held, else what not.
    check: Callable[[Stack], str] | None = None
    # The longest a request may take meanwhile (None: not bounded; a frozen part's rows set it).
    slowest_bound_s: float | None = None


EVIDENCE = 5
SHOWN_HEADERS = ("X-Served-By", "X-DB-Node", "X-Cache", "X-Request-ID")


def evidence(user_id: int, written: Any, read: Any) -> str:
    """One line on a failed read of the client's own write: the write's and the read's headers."""

    def shown(response: Any) -> str:
        return " ".join(f"{h}={response.headers.get(h, '')}" for h in SHOWN_HEADERS)

    token = "token" if written.headers.get("X-Consistency-Token") else "no token"
    return (
        f"user {user_id}: written ({token}) {shown(written)}; read {read.status_code} {shown(read)}"
    )


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
    makes it the primary again (the next scenarios meet the stack as configured)."""
    supervise(stack, "start", "mysql-primary")
    launcher("up")
    launcher("switchover", {"MYSQL_SWITCHOVER_TO": f"{stack.host}:{stack.primary.port}"})


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
    deadline = time.monotonic() + timeout
    while dead_letters(stack) <= POISON["before"]:
        if time.monotonic() > deadline:
            return "the poison message was not dead-lettered"
        time.sleep(0.5)
    return ""


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


SCENARIOS = [
    Scenario(
        "kill -9 of an API replica",
        lambda s: kill_program(s, "api-2"),
        lambda s: supervise(s, "start", "api-2"),
    ),
    Scenario(
        "DB replica stopped",
        lambda s: supervise(s, "stop", "mysql-replica-2"),
        lambda s: supervise(s, "start", "mysql-replica-2"),
    ),
    Scenario(
        "replica SQL thread stalled",
        lambda s: sql(s, "replica-1", "STOP REPLICA SQL_THREAD"),
        lambda s: sql(s, "replica-1", "START REPLICA SQL_THREAD"),
    ),
    Scenario(
        "heartbeat writer stopped",
        lambda s: supervise(s, "stop", "heartbeat"),
        lambda s: supervise(s, "start", "heartbeat"),
    ),
    Scenario(
        "Redis killed",
        lambda s: supervise(s, "signal", "KILL", "redis"),
        lambda s: supervise(s, "start", "redis"),
    ),
    Scenario(
        "primary stopped, then restarted",
        lambda s: supervise(s, "stop", "mysql-primary"),
        lambda s: supervise(s, "start", "mysql-primary"),
        writes_refused=True,
    ),
    Scenario(
        "kill -9 of the primary's mariadbd (supervisord restarts it)",
        lambda s: kill_program(s, "mysql-primary"),
        lambda s: supervise(s, "start", "mysql-primary"),
        writes_refused=True,
    ),
    Scenario(
        "kill -9 of the nginx master, healed by make up",
        lambda s: kill_pid_file(s, "nginx"),
        lambda s: launcher("up"),
        entry_replaced=True,
    ),
    Scenario(
        "kill -9 of supervisord, healed by make up",
        lambda s: kill_pid_file(s, "supervisord"),
        lambda s: launcher("up"),
        writes_refused=True,
        entry_replaced=True,
    ),
    Scenario(
        "primary lost (kill -9, kept down), make failover; back by make up and make switchover",
        lose_primary,
        primary_returns,
        writes_refused=True,
    ),
    Scenario(
        "make switchover to a replica, and back",
        lambda s: launcher("switchover"),
        lambda s: launcher("switchover", {"MYSQL_SWITCHOVER_TO": f"{s.host}:{s.primary.port}"}),
    ),
    # The message queue (docs/messaging.md): writes go on, and every acknowledged write's event
    # reaches the workers ("lost events" counts the ones that did not).
    Scenario(
        "kill -9 of the events stream's leader (a NATS node)",
        lambda s: kill_pid_file(s, queue.stream_leader_of(s)),
        lambda s: supervise(s, "start", "all"),
    ),
    Scenario(
        "the whole broker stopped (3 NATS nodes)",
        lambda s: supervise(s, "stop", *(n.name for n in s.nats_nodes)),
        lambda s: supervise(s, "start", *(n.name for n in s.nats_nodes)),
    ),
    Scenario(
        "kill -9 of the relay holding the outbox lease",
        lambda s: kill_pid_file(s, lease_holder(s)),
        lambda s: supervise(s, "start", "all"),
    ),
    Scenario(
        "kill -9 of a queue worker",
        lambda s: kill_pid_file(s, s.workers[0]),
        lambda s: supervise(s, "start", "all"),
    ),
    Scenario(
        "a message no worker can apply (poison) in the stream",
        publish_poison,
        lambda s: None,
        check=poison_dead_lettered,
    ),
]
# Last, after the pauses too (loadtest/pause_chaos.py): the former primary may have diverged, and
# the stack is removed afterwards.
FINAL = Scenario(
    "semi-sync off: primary lost (kill -9, kept down), make failover",
    lose_primary_without_semi_sync,
    lambda s: None,
    writes_refused=True,
    loss_possible=True,
)


def lease_holder(stack: Stack) -> str:
    """The relay that holds the outbox lease now (relay-N)."""
    rows = sql(stack, stack.writer.name, "SELECT holder FROM app.relay_lease WHERE name = 'outbox'")
    return str(rows[0][0]).split(":")[0]


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
    scenario.inject(stack)
    time.sleep(fault_s)
    scenario.heal(stack)
    problem = scenario.check(stack) if scenario.check else ""
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


def verdict(row: dict[str, Any]) -> bool:
    """The expected zeros: no lost write, no stale read, no failed read (but while the entry
    point itself is replaced), and refusals (503 with Retry-After) only while the primary is
    down."""
    if (row["lost writes"] and not row.get("loss_possible")) or row["stale reads"]:
        return False
    if row.get("lost events") and not row.get("loss_possible"):
        return False
    if row.get("problem"):
        return False
    if row.get("slowest_bound_s") is not None and row["slowest s"] > row["slowest_bound_s"]:
        return False
    if row["failed reads"] and not row["entry_replaced"]:
        return False
    refusals = row["refused writes (503)"] + row["refused own reads (503)"]
    return bool(row["writes_refused_ok"] or refusals == 0)


COLUMNS = [
    "scenario",
    "requests",
    "failed reads",
    "failed writes",
    "refused writes (503)",
    "refused own reads (503)",
    "acknowledged writes",
    "lost writes",
    "lost events",
    "longest event wait s",
    "stale reads",
    "recovery s",
    "slowest s",
    "failures",
]


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the rows."""
    lines = ["| " + " | ".join(COLUMNS) + " | expected |", "|" + "---|" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = [str(row.get(c, "–")) for c in COLUMNS[:-1]]
        failures = [f"{k} ×{n}" for k, n in sorted(row["failures"].items())]
        cells.append(", ".join([*failures, *filter(None, [row.get("problem")])]) or "–")
        if row.get("loss_possible"):
            cells.append(f"shown: {row['lost writes']} acknowledged write(s) lost")
        else:
            cells.append("met" if verdict(row) else "**missed**")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(
    rows: list[dict[str, Any]],
    command: str,
    section: str = "chaos",
    title: str = "Latest run",
    note: str = "",
) -> None:
    """Replace the generated SECTION of docs/reliability.md (NOTE follows the table)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"## {title}\n\n`{command}`, {stamp}, {CLIENTS} clients, {FAULT_S:.0f} s per fault."
        f"\n\n{table(rows)}\n\n{note}"
    )
    replace_section(REPO / "docs" / "reliability.md", section, body)


def launcher(command: str, overrides: dict[str, str] | None = None) -> None:
    """The native launcher on the chaos stack, with OVERRIDES of its settings."""
    subprocess.run(
        [sys.executable, "-m", "stack", command],
        cwd=REPO,
        check=True,
        env={**os.environ, **CHAOS_ENV, **(overrides or {})},
        stdout=subprocess.DEVNULL,
    )


def main() -> int:
    """Start a stack of its own, run every scenario, report, tear the stack down."""
    os.environ.update(CHAOS_ENV)
    launcher("up")
    try:
        stack = load_stack()
        rows: list[dict[str, Any]] = []
        pause_rows: list[dict[str, Any]] = []
        only = os.environ.get("CHAOS_ONLY", "")
        from loadtest import edge_chaos, pause_chaos  # they use this module's helpers

        pauses = pause_chaos.SCENARIOS
        for scenario in [s for s in [*SCENARIOS, *pauses, FINAL] if only in s.name]:
            paused = scenario in pauses
            row = run_scenario(stack, scenario, pause_chaos.PAUSE_S if paused else FAULT_S)
            (pause_rows if paused else rows).append(row)
            print(table([row]).splitlines()[-1], flush=True)
            for line in row["evidence"]:
                print(f"    {line}", file=sys.stderr, flush=True)

        edge_rows = edge_chaos.rows(stack, ensure_key(stack, "chaos", "critical"), only)
    finally:
        launcher("clean")
    print("\n" + table(rows + pause_rows) + "\n\n" + edge_chaos.table(edge_rows))
    if os.environ.get("CHAOS_REPORT", "1") == "1":
        # A section is rewritten only when every one of its rows ran (CHAOS_ONLY runs a few).
        if len(rows) == len(SCENARIOS) + 1:
            write_report(rows, "make chaos")
        if len(pause_rows) == len(pause_chaos.SCENARIOS):
            pause_chaos.report(pause_rows)
        if len(edge_rows) == len(edge_chaos.SCENARIOS):
            edge_report(edge_chaos.table(edge_rows))
    edge_ok = all(edge_chaos.met(r["scenario"], r["result"]) for r in edge_rows)
    return 0 if all(verdict(r) for r in rows + pause_rows) and edge_ok else 1


def edge_report(body: str) -> None:
    """Replace the edge rows' section of docs/reliability.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"## Latest run: the edge's freshness\n\n`make chaos`, {stamp} "
        "(loadtest/edge_chaos.py: 4 hot users changed while 4 anonymous readers poll them "
        f"through nginx).\n\n{body}\n"
    )
    replace_section(REPO / "docs" / "reliability.md", "chaos-edge", text)


if __name__ == "__main__":
    sys.exit(main())
