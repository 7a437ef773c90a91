"""`make compose-failover` on the compose way to run: the same mysql/failover.sh, as a one-shot.

Runs after the other compose tests (it leaves mysql-replica the primary): the primary's server is
frozen (SIGSTOP), `make compose-failover` fences it (kills its container, keeps it down) and
promotes the replica; the API containers follow by themselves; the old
primary comes back with `docker compose up`, read-only, and ends a replica of the new one.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import time
from contextlib import redirect_stdout

import pytest

from stack.compose import Project, compose, compose_failover, up
from stack.settings import Stack
from tests.integration.helpers import Api, Databases, eventually

pytestmark = pytest.mark.compose

WRITES_BACK_AFTER_FAILOVER_S = 5.0


def compose_failover_output(project: Project) -> str:
    """`make compose-failover`'s own steps, and what they printed."""
    printed = io.StringIO()
    with redirect_stdout(printed):
        compose_failover(project)
    return printed.getvalue()


def test_a_lost_primary_is_replaced_and_returns_as_a_replica(
    project: Project, api: Api, dbs: Databases, stack: Stack
) -> None:
    before = api.create_user("Compose", "BeforeFailover")
    # Frozen (SIGSTOP of its mariadbd from the host: a paused VM, its port open), not killed:
    # make compose-failover must fence it before it promotes the replica.
    pid = compose(project, "ps", "-q", "mysql-primary", capture=True).stdout.strip()
    server = int(
        subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Pid}}", pid], capture_output=True, text=True
        ).stdout
    )
    os.kill(server, signal.SIGSTOP)
    try:
        failover = compose_failover_output(project)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server, signal.SIGCONT)  # woken: nothing of it may run any more
    promoted = time.monotonic()
    assert "mysql-primary runs but does not answer: killed" in failover, failover
    running = compose(project, "ps", "--status", "running", "-q", "mysql-primary", capture=True)
    assert running.stdout.strip() == ""
    with pytest.raises(ProcessLookupError):
        os.kill(server, 0)
    eventually(
        lambda: (
            api.post("/api/users", json={"name": "After", "second_name": "Failover"}).status_code
            == 201
        ),
        timeout=WRITES_BACK_AFTER_FAILOVER_S,
    )
    print(f"\ncompose failover: writes back {time.monotonic() - promoted:.2f}s after the script")
    # Every worker of every API container follows (each within its own poll; readyz lands on one).
    eventually(
        lambda: all(
            api.readyz().json()["topology"]["nodes"]["primary"] == "mysql-replica:3306"
            for _ in range(12)
        ),
        timeout=WRITES_BACK_AFTER_FAILOVER_S,
    )
    assert api.get(f"/api/users/{before['id']}").status_code == 200
    # The former primary returns with `docker compose up`: fenced from its first start, then a
    # replica of the new primary (replication-setup follows the failover record).
    up(project)
    assert dbs.scalar("primary", "SELECT @@read_only") == 1
    with dbs.connect("primary") as conn, conn.cursor() as cursor:
        cursor.execute("SHOW REPLICA STATUS")
        row = dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))
    assert (row["Master_Host"], row["Slave_IO_Running"], row["Slave_SQL_Running"]) == (
        "mysql-replica",
        "Yes",
        "Yes",
    )
    after = api.create_user("Compose", "AfterRejoin")
    eventually(
        lambda: dbs.scalar("primary", "SELECT COUNT(*) FROM users WHERE id = %s", after["id"]) == 1,
        timeout=15,
    )
    checksums = [
        dbs.query(node, "CHECKSUM TABLE users, posts") for node in ("primary", "replica-1")
    ]
    assert checksums[0] == checksums[1]
