"""The primary lost for good, and a planned change of primary, under a bounded write + read load
(mysql/failover.sh through the launcher, as `make failover` and `make switchover` run it).

The tests run in order on one topology: the primary is frozen, fenced and a replica promoted; the
former primary returns, is made writable by hand (a fence that failed) and takes no write, then
`make up` makes it a replica; a switchover makes it the primary
again, so the tests after this module meet the stack as configured. The module's teardown puts
it back that way whatever failed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import pymysql
import pytest
import requests

from stack import supervisor
from stack.settings import Node, Stack, load_stack
from tests.integration.conftest import launcher, supervisorctl
from tests.integration.helpers import Api, Clients, Databases, eventually

pytestmark = pytest.mark.integration

# What the tests hold the stack to (docs/replication.md gives the measured values):
# writes answer again this soon after `make failover` returns (each worker notices the promoted
# replica within a poll, REPLICA_POLL_INTERVAL_S, and switches);
WRITES_BACK_AFTER_FAILOVER_S = 2.0
# during a switchover a write waits (TOPOLOGY_WAIT_S at most) and is run again on the new primary:
# none fails, and none waits longer than this.
SWITCHOVER_WRITE_PAUSE_S = 3.0
DATA_TABLES = "users, posts"


@dataclass
class Load(Clients):
    """Writers and readers on their own threads, each request's outcome kept with its time."""

    stack: Stack
    api_key: str
    read_ids: list[int]
    writes: list[tuple[float, float, int, int | None]] = field(default_factory=list)
    reads: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def write(self, worker: int) -> None:
        session, n = requests.Session(), 0
        while not self.stop.is_set():
            n += 1
            started = time.monotonic()
            try:
                response = session.post(
                    f"{self.stack.base_url}/api/users",
                    json={"name": f"Failover{worker}", "second_name": f"Write{n}"},
                    headers={"X-API-Key": self.api_key},
                    timeout=15,
                )
                status = response.status_code
                user_id = response.json()["id"] if status == 201 else None
            except requests.RequestException:
                status, user_id = 0, None
            self.writes.append((started, time.monotonic(), status, user_id))
            time.sleep(0.02)

    def read(self, worker: int) -> None:
        n = worker
        while not self.stop.is_set():
            n += 1
            user_id = self.read_ids[n % len(self.read_ids)]
            # Anonymous and without a token: one read by id (mostly cached), one list page
            # (always the database).
            path = f"/api/users/{user_id}" if n % 2 else f"/api/users?limit=1&after={user_id - 1}"
            try:
                status = requests.get(f"{self.stack.base_url}{path}", timeout=15).status_code
            except requests.RequestException:
                status = 0
            self.reads.append((time.monotonic(), status))
            time.sleep(0.01)

    def clients(self) -> list[threading.Thread]:
        return [
            *(threading.Thread(target=self.write, args=(i,)) for i in range(3)),
            *(threading.Thread(target=self.read, args=(i,)) for i in range(3)),
        ]

    def acknowledged(self) -> list[int]:
        return [user_id for *_, status, user_id in self.writes if status == 201 and user_id]

    def failed_reads(self) -> list[tuple[float, int]]:
        return [(t, status) for t, status in self.reads if status != 200]

    def timeline(self, start: float, end: float) -> str:
        """The writes sent between START and END: when each was sent and answered, and how,
        in seconds from START (what a failed bound needs to be explained)."""
        return "".join(
            f"\nwrite sent {sent - start:+.3f}s, answered {done - start:+.3f}s: {status}"
            for sent, done, status, _ in sorted(self.writes)
            if start <= sent <= end
        )

    def first_write_after(self, moment: float) -> float:
        """When the first write sent after MOMENT was acknowledged."""
        return min(
            done for started, done, status, _ in self.writes if started >= moment and status == 201
        )


def ids_on(dbs: Databases, node: str, ids: list[int]) -> int:
    """How many of IDS node NODE holds."""
    marks = ",".join(["%s"] * len(ids))
    return int(dbs.scalar(node, f"SELECT COUNT(*) FROM users WHERE id IN ({marks})", *ids))  # noqa: S608 (placeholders only)


def ids_of(dbs: Databases, node: str, ids: list[int]) -> list[int]:
    """Which of IDS node NODE holds."""
    marks = ",".join(["%s"] * len(ids))
    rows = dbs.query(node, f"SELECT id FROM users WHERE id IN ({marks})", *ids)  # noqa: S608 (placeholders only)
    return [int(row[0]) for row in rows]


def kept_in_binlog(stack: Stack, node: str, ids: list[int]) -> set[int]:
    """Which of IDS (users inserted) the binlog copy that NODE kept before it recovered as a
    replica holds (setup-replication.sh, keep_binlog_tail), read with mariadb-binlog."""
    inserted: set[str] = set()
    # One file at a time: the copies of two failovers overlap, which mariadb-binlog refuses to
    # read as one sequence ("Found out of order GTID").
    for copy in sorted((stack.state / "mysql" / node).glob("binlog-kept-epoch-*/mysql-bin.*")):
        decoded = subprocess.run(
            ["mariadb-binlog", "--base64-output=DECODE-ROWS", "--verbose", str(copy)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        inserted |= set(
            re.findall(r"### INSERT INTO `\w+`\.`users`\n### SET\n###   @1=(\d+)\n", decoded)
        )
    return {user_id for user_id in ids if str(user_id) in inserted}


def answering(dbs: Databases, stack: Stack) -> list[Node]:
    """The nodes that answer now."""
    alive = []
    for node in stack.databases:
        try:
            dbs.scalar(node.name, "SELECT 1")
        except pymysql.err.OperationalError:  # down: not counted
            pass
        else:
            alive.append(node)
    return alive


def wait_converged(dbs: Databases, writer: Node, nodes: list[Node], timeout: float = 30) -> None:
    """Every one of NODES has applied all WRITER has."""
    target = str(dbs.scalar(writer.name, "SELECT @@gtid_binlog_pos"))
    for node in nodes:
        if node != writer:
            eventually(partial(dbs.has_applied, node.name, target, "gtid_current_pos"), timeout)


def kill_primary(stack: Stack) -> None:
    """SIGKILL the primary's mariadbd, and keep it down (supervisord would restart it)."""
    writer = stack.writer.name
    pid = int((stack.state / "mysql" / writer / "mysqld.pid").read_text())
    supervisor.crash(stack, f"mysql-{writer}", pid)


@pytest.fixture(scope="module")
def topology(stack: Stack) -> Iterator[None]:
    """After the module: the configured primary is the primary again, every node replicating."""
    yield
    supervisorctl("start", "mysql-primary")
    former = f"{stack.host}:{stack.primary.port}"
    if f"refused {former}" in launcher("up").stderr:
        launcher("rebuild-node", {"NODE": former})
    if load_stack().writer.name != "primary":
        launcher("switchover", {"MYSQL_SWITCHOVER_TO": f"{stack.host}:{stack.primary.port}"})


@pytest.fixture(scope="module")
def read_ids(stack: Stack, api_key: str, dbs: Databases) -> list[int]:
    with Api(stack.base_url, api_key) as api:
        ids = [api.create_user("Failover", f"Reader{i}")["id"] for i in range(20)]
    dbs.wait_replicated()
    return ids


def test_a_frozen_primary_is_fenced_replaced_and_no_acknowledged_write_is_lost(
    stack: Stack, api_key: str, dbs: Databases, read_ids: list[int], topology: None
) -> None:
    """The primary frozen (SIGSTOP: a paused VM, its port open): `make failover` finds it running
    but not answering, kills it and keeps it down (else it would wake up writable, with
    statements in flight from before the freeze), and promotes a replica. Waking it changes
    nothing: the process is gone; the next test brings it back with `make up`."""
    writer = stack.writer.name
    pid = int((stack.state / "mysql" / writer / "mysqld.pid").read_text())
    with Load(stack, api_key, read_ids) as load:
        time.sleep(2)
        killed = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        time.sleep(1)  # writes wait meanwhile: nobody has promoted anything yet
        started = time.monotonic()
        failover = launcher("failover")
        promoted = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # woken: nothing of it may run any more
        eventually(lambda: load.writes and load.writes[-1][2] == 201, timeout=10)
        time.sleep(2)
    assert "runs but does not answer: killed" in failover.stdout, failover.stdout
    assert supervisor.state_of(stack, f"mysql-{writer}") == "STOPPED"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    new = load_stack().writer
    assert new.name != "primary"
    assert "takes writes" in failover.stdout
    back = load.first_write_after(promoted)
    print(
        f"\nfailover: script {promoted - started:.2f}s; writes back {back - promoted:.2f}s after"
        f" it, {back - killed:.2f}s after the kill; failed reads {len(load.failed_reads())}"
        f" of {len(load.reads)}"
    )
    assert back - promoted <= WRITES_BACK_AFTER_FAILOVER_S, failover.stdout + load.timeline(
        promoted - 1, back
    )
    failed = load.failed_reads()
    assert not failed, f"{len(failed)} failed reads, first {failed[:5]}"
    acknowledged = load.acknowledged()
    assert acknowledged
    survivors = answering(dbs, stack)
    wait_converged(dbs, new, survivors)
    for node in survivors:
        held = ids_on(dbs, node.name, acknowledged)
        assert held == len(acknowledged), f"{node.name} holds {held} of {len(acknowledged)}"
    # Every API worker writes to the new primary and shows it in /readyz.
    with Api(stack.base_url, api_key, stack.internal_url) as api:
        for _ in range(12):
            assert api.readyz().json()["topology"]["nodes"]["primary"].endswith(f":{new.port}")


def test_the_former_primary_returns_fenced_and_ends_a_replica(
    stack: Stack, api_key: str, dbs: Databases, topology: None
) -> None:
    new = load_stack().writer
    assert new.name != "primary", "runs after the failover test"
    supervisorctl("start", "mysql-primary")
    # Before anything opens it: read-only, so the application's account cannot write there.
    eventually(lambda: dbs.scalar("primary", "SELECT @@read_only") == 1, timeout=30)
    # A fence that failed: the former primary writable again, as one frozen through a failover
    # wakes up where nothing could kill it. Every writer follows the newer epoch, not it.
    assert dbs.scalar(new.name, "SELECT epoch FROM primary_epoch") > dbs.scalar(
        "primary", "SELECT epoch FROM primary_epoch"
    )
    dbs.query("primary", "SET GLOBAL read_only = 0")
    stale = dbs.scalar("primary", "SELECT @@gtid_binlog_pos")
    # Processes that look for the primary afresh meanwhile (a restart: the heartbeat writer, a
    # relay, an API replica) meet two writable members, the configured primary among them.
    supervisorctl("restart", "heartbeat", "relay-1", "api-1")
    with Api(stack.base_url, api_key) as api:
        started = time.monotonic()
        while time.monotonic() - started < 3.0:  # API writes, heartbeats, relays, workers
            api.create_user("While", "TwoWritable")
            assert dbs.scalar("primary", "SELECT @@gtid_binlog_pos") == stale
            time.sleep(0.1)
    up = launcher("up")
    former = f"{stack.host}:{stack.primary.port}"
    if f"refused {former}" in up.stderr:
        # Semi-sync fell back to asynchronous before the freeze (a replica slower than
        # MYSQL_SEMI_SYNC_TIMEOUT_MS under load): it holds answered writes no replica received.
        # Refused, as documented; make rebuild-node brings it back. (An in-doubt tail is cut as
        # it recovers as a replica, and a tail of its own that a replica had is applied back:
        # neither is a refusal since 2026-12-07.)
        assert "diverged" in up.stderr, up.stderr
        refusal = [line for line in up.stderr.splitlines() if f"refused {former}" in line]
        print(f"\nformer primary refused: {refusal[0]}")
        assert dbs.scalar("primary", "SELECT @@read_only") == 1
        launcher("rebuild-node", {"NODE": former})
    assert dbs.scalar("primary", "SELECT @@read_only") == 1
    status = dbs.query("primary", "SHOW REPLICA STATUS")
    assert status, "the former primary replicates"
    with dbs.connect("primary") as conn, conn.cursor() as cursor:
        cursor.execute("SHOW REPLICA STATUS")
        row = dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))
    assert int(row["Master_Port"]) == new.port
    assert (row["Slave_IO_Running"], row["Slave_SQL_Running"]) == ("Yes", "Yes")
    with (
        dbs.connect("primary", as_app=True) as conn,
        conn.cursor() as cursor,
        pytest.raises(pymysql.err.OperationalError, match=r"read-only|1290"),
    ):
        cursor.execute("UPDATE heartbeat SET ts = UTC_TIMESTAMP(6) WHERE id = 1")
    with Api(stack.base_url, api_key) as api:
        api.create_user("After", "Rejoin")
    wait_converged(dbs, new, list(stack.databases))
    checksums = {
        node.name: dbs.query(node.name, f"CHECKSUM TABLE {DATA_TABLES}") for node in stack.databases
    }
    assert len({tuple(rows) for rows in checksums.values()}) == 1, checksums


def test_a_switchover_under_load_fails_no_read_and_loses_no_write(
    stack: Stack, api_key: str, dbs: Databases, read_ids: list[int], topology: None
) -> None:
    assert load_stack().writer.name != "primary", "runs after the failover test"
    with Load(stack, api_key, read_ids) as load:
        time.sleep(2)
        started = time.monotonic()
        switchover = launcher(
            "switchover", {"MYSQL_SWITCHOVER_TO": f"{stack.host}:{stack.primary.port}"}
        )
        done = time.monotonic()
        time.sleep(2)
    assert load_stack().writer.name == "primary"
    assert "takes writes" in switchover.stdout
    during = [(s, e, status) for s, e, status, _ in load.writes if e >= started and s <= done + 1]
    longest = max(e - s for s, e, _ in during)
    print(
        f"\nswitchover: script {done - started:.2f}s; longest write {longest:.2f}s;"
        f" writes {len(load.writes)}, reads {len(load.reads)}"
    )
    failed = load.failed_reads()
    assert not failed, f"{len(failed)} failed reads, first {failed[:5]}"
    refused = [w for w in load.writes if w[2] != 201]
    assert not refused, f"{len(refused)} failed writes, first {refused[:5]}"
    assert longest <= SWITCHOVER_WRITE_PAUSE_S
    wait_converged(dbs, stack.primary, list(stack.databases))
    for node in stack.databases:
        assert ids_on(dbs, node.name, load.acknowledged()) == len(load.acknowledged())


def test_a_former_primary_with_writes_no_replica_received_is_refused_then_rebuilt(
    stack: Stack, api_key: str, dbs: Databases, topology: None
) -> None:
    """What semi-sync buys, shown by its absence: with no replica receiving (every IO thread
    stopped, so the primary falls back to asynchronous), acknowledged writes exist on the primary
    alone; lost with it, they are missing after the failover, and the former primary, which still
    has them, is refused when it returns. Rebuilt from the new primary (make rebuild-node), it
    rejoins."""
    assert load_stack().writer.name == "primary", "runs after the switchover test"
    for replica in stack.replicas:
        dbs.query(replica.name, "STOP REPLICA IO_THREAD")
    with Api(stack.base_url, api_key) as api:
        alone = [api.create_user("OnlyOn", f"ThePrimary{i}")["id"] for i in range(5)]
    kill_primary(stack)
    for replica in stack.replicas:
        dbs.query(replica.name, "START REPLICA IO_THREAD")  # nothing left to receive
    launcher("failover")
    new = load_stack().writer
    lost = len(alone) - ids_on(dbs, new.name, alone)
    print(
        f"\nsemi-sync fallen back: {lost} of {len(alone)} acknowledged writes lost by the failover"
    )
    assert lost == len(alone)
    supervisorctl("start", "mysql-primary")
    up = launcher("up")
    assert f"refused {stack.host}:{stack.primary.port}: its GTID history diverged" in up.stderr
    assert dbs.scalar("primary", "SELECT @@read_only") == 1
    assert dbs.query("primary", "SHOW REPLICA STATUS") == []
    # Kept for an operator to look at: in its tables, or, a commit not yet durable in its engine
    # when it died (cut from the binlog as it recovered as a replica), in the binlog it kept.
    held = set(ids_of(dbs, "primary", alone))
    cut = [user_id for user_id in alone if user_id not in held]
    print(f"former primary: {len(held)} of them in its tables, {len(cut)} cut at recovery")
    assert set(cut) <= kept_in_binlog(stack, "primary", cut)
    # make rebuild-node: a copy of the new primary, then a replica of it.
    rebuilt = launcher("rebuild-node", {"NODE": f"{stack.host}:{stack.primary.port}"})
    assert "rebuilt: a replica of" in rebuilt.stdout
    up = launcher("up")
    assert "refused" not in up.stderr
    wait_converged(dbs, new, list(stack.databases), timeout=60)
    assert ids_on(dbs, "primary", alone) == 0
    checksums = {
        n.name: dbs.query(n.name, f"CHECKSUM TABLE {DATA_TABLES}") for n in stack.databases
    }
    assert len({tuple(rows) for rows in checksums.values()}) == 1, checksums


def semi_sync(dbs: Databases, node: Node) -> tuple[str, int]:
    """The primary's semi-sync state: ON or OFF (fallen back to asynchronous), and how many
    commits wait for an ack."""
    status = dict(
        dbs.query(
            node.name,
            "SHOW GLOBAL STATUS WHERE Variable_name IN"
            " ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_wait_sessions')",
        )
    )
    return str(status["Rpl_semi_sync_master_status"]), int(
        status["Rpl_semi_sync_master_wait_sessions"]
    )


def wait_in_doubt(dbs: Databases, writer: Node, others: list[Node], timeout_ms: str) -> None:
    """Make WRITER's next commit wait for an ack no replica will send: every replica stops
    receiving, and the primary waits a minute for an ack instead of falling back to asynchronous
    after MYSQL_SEMI_SYNC_TIMEOUT_MS. A background commit (a relay's, a worker's) that began its
    wait before the minute was set falls back after the short timeout and switches semi-sync off,
    and the next commit would be answered at once (a failed run): so the state is checked, ON with
    nothing waiting, after the minute is set, and set up again from receiving replicas if not."""
    for _ in range(5):
        for node in others:
            dbs.query(node.name, "STOP REPLICA IO_THREAD")
        dbs.query(writer.name, "SET GLOBAL rpl_semi_sync_master_timeout = 60000")
        if semi_sync(dbs, writer) == ("ON", 0):
            return
        dbs.query(writer.name, f"SET GLOBAL rpl_semi_sync_master_timeout = {int(timeout_ms)}")
        for node in others:
            dbs.query(node.name, "START REPLICA IO_THREAD")
        eventually(lambda: semi_sync(dbs, writer) == ("ON", 0), 10)
    raise AssertionError("semi-sync fell back every time before a commit could wait for its ack")


@pytest.fixture
def no_heartbeat() -> Iterator[None]:
    """The heartbeat stopped (its beats would be commits in doubt too), started again after."""
    supervisorctl("stop", "heartbeat")
    try:
        yield
    finally:
        supervisorctl("start", "heartbeat")


def test_a_primary_lost_with_a_commit_waiting_for_its_ack_rejoins_without_a_rebuild(
    stack: Stack, api_key: str, dbs: Databases, topology: None, no_heartbeat: None
) -> None:
    """The in-doubt tail (docs/replication.md, "When it diverges, and when not"): the primary is
    killed while commits wait for a replica's ack, none of them answered and none on any replica.
    Restarted read-only after the failover, it recovers as a replica (--init-rpl-role=SLAVE):
    that tail is rolled back and cut from its binlog, a copy of which is kept beside it, and
    `make up` makes it a replica of the new primary, with no refusal and no rebuild. Recovering
    as a primary (as before) committed the tail, and the node was refused as diverged."""
    writer = load_stack().writer
    others = [node for node in stack.databases if node != writer]
    with Api(stack.base_url, api_key) as api:
        user = api.create_user("InDoubt", "Before")["id"]
    wait_converged(dbs, writer, others)
    wait_in_doubt(dbs, writer, others, stack.env["MYSQL_SEMI_SYNC_TIMEOUT_MS"])
    before = str(dbs.scalar(writer.name, "SELECT @@gtid_binlog_pos"))
    errors: list[BaseException] = []

    def in_doubt() -> None:
        try:
            dbs.query(writer.name, "UPDATE users SET second_name = 'Tail' WHERE id = %s", user)
        except pymysql.err.MySQLError as error:  # the server dies under it: never answered
            errors.append(error)

    committing = threading.Thread(target=in_doubt)
    committing.start()
    eventually(lambda: str(dbs.scalar(writer.name, "SELECT @@gtid_binlog_pos")) != before, 10)
    assert committing.is_alive(), "the commit was answered: it did not wait for its ack"
    pid = int((stack.state / "mysql" / writer.name / "mysqld.pid").read_text())
    supervisor.crash(stack, f"mysql-{writer.name}", pid)
    committing.join(timeout=30)
    assert errors, "the commit in doubt got no error when its server died"
    for node in others:
        dbs.query(node.name, "START REPLICA IO_THREAD")
    launcher("failover")
    new = load_stack().writer
    assert new != writer
    supervisorctl("start", f"mysql-{writer.name}")
    up = launcher("up")
    former = f"{stack.host}:{writer.port}"
    assert f"refused {former}" not in up.stderr, up.stderr
    kept = list((stack.state / "mysql" / writer.name).glob("binlog-kept-epoch-*/mysql-bin.*"))
    assert kept, "the former primary kept no copy of its binlog before recovering as a replica"
    with dbs.connect(writer.name) as conn, conn.cursor() as cursor:
        cursor.execute("SHOW REPLICA STATUS")
        row = dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))
    assert int(row["Master_Port"]) == new.port
    assert (row["Slave_IO_Running"], row["Slave_SQL_Running"]) == ("Yes", "Yes")
    wait_converged(dbs, new, list(stack.databases))
    for node in stack.databases:  # the tail is nowhere: cut on the former primary, never sent
        assert dbs.scalar(node.name, "SELECT second_name FROM users WHERE id = %s", user) == (
            "Before"
        )
    checksums = {
        n.name: dbs.query(n.name, f"CHECKSUM TABLE {DATA_TABLES}") for n in stack.databases
    }
    assert len({tuple(rows) for rows in checksums.values()}) == 1, checksums
