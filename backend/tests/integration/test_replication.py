"""Writes go to the primary, reach the replica by GTID replication, and never land on a replica."""

from __future__ import annotations

import re

import pymysql
import pytest

from tests.integration.conftest import launcher
from tests.integration.helpers import Api, Databases, eventually

pytestmark = pytest.mark.integration


def test_a_created_user_is_read_back_from_the_replica_once_replicated(
    api: Api, dbs: Databases
) -> None:
    created = api.create_user("Grace", "Hopper")
    dbs.wait_replicated()

    def read_from_replica_1() -> bool:
        # The list is not cached, so every read shows the node that served it.
        response = api.get(f"/api/users?limit=1&after={created['id'] - 1}")
        return response.headers["X-DB-Node"] == "replica-1" and response.json()["items"] == [
            created
        ]

    eventually(read_from_replica_1)
    assert api.get(f"/api/users/{created['id']}").json() == created


def test_writes_are_served_by_the_primary(api: Api) -> None:
    response = api.post("/api/users", json={"name": "Alan", "second_name": "Turing"})
    assert response.headers["X-DB-Node"] == "primary"


def test_a_write_through_the_app_never_lands_on_a_replica(api: Api, dbs: Databases) -> None:
    user = api.create_user()
    api.patch(f"/api/users/{user['id']}", json={"name": "Augusta"})
    api.post(f"/api/users/{user['id']}/posts", json={"body": "Notes on the engine"})
    dbs.wait_replicated()
    primary_server_id = dbs.scalar("primary", "SELECT @@server_id")
    for replica in dbs.stack.replicas:
        # GTIDs are domain-server-sequence: every transaction a replica holds came from the primary.
        gtids = str(dbs.scalar(replica.name, "SELECT @@gtid_binlog_pos"))
        origins = {int(g.split("-")[1]) for g in gtids.split(",") if g}
        assert origins == {primary_server_id}
        assert dbs.scalar(replica.name, "SELECT @@read_only") == 1


def test_the_app_user_cannot_write_to_a_replica(dbs: Databases) -> None:
    conn = dbs.connect("replica-1", as_app=True)
    try:
        with pytest.raises(pymysql.err.OperationalError) as error, conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO users (name, second_name, created_at, updated_at) "
                "VALUES ('x', 'y', NOW(), NOW())"
            )
        assert error.value.args[0] == 1290  # ER_OPTION_PREVENTS_STATEMENT: --read-only
    finally:
        conn.close()


def test_both_replication_threads_run(dbs: Databases) -> None:
    status = dbs.connect("replica-1").cursor(pymysql.cursors.DictCursor)
    status.execute("SHOW REPLICA STATUS")
    row = status.fetchone()
    assert row is not None
    assert (row["Slave_IO_Running"], row["Slave_SQL_Running"], row["Using_Gtid"]) == (
        "Yes",
        "Yes",
        "Slave_Pos",
    )


def replication_sources(dbs: Databases) -> list[tuple[object, ...]]:
    rows = []
    for replica in dbs.stack.replicas:
        cursor = dbs.connect(replica.name).cursor(pymysql.cursors.DictCursor)
        cursor.execute("SHOW REPLICA STATUS")
        status = cursor.fetchone()
        assert status is not None
        fields = ("Master_Host", "Master_Port", "Master_User", "Using_Gtid")
        rows.append(tuple(status[k] for k in fields))
    return rows


def test_the_replication_script_run_twice_is_a_no_op(dbs: Databases) -> None:
    before = (dbs.accounts_checksum("primary"), replication_sources(dbs))
    output = launcher("replicate").stdout
    assert "already configured: nothing to do" in output
    assert not re.search(r": (created|attached|replication restarted)", output)
    assert (dbs.accounts_checksum("primary"), replication_sources(dbs)) == before


def test_repl_status_reports_threads_positions_and_lag(dbs: Databases) -> None:
    dbs.wait_replicated()
    output = launcher("repl-status").stdout
    for name in ("replica-1", "replica-2"):
        row = next(line for line in output.splitlines() if line.startswith(name))
        assert row.split()[2:5] == ["Yes", "Yes", "0"]
    assert "gtid_binlog_pos=0-1-" in output


def test_every_node_purges_binlogs_after_a_week(dbs: Databases) -> None:
    for node in dbs.stack.databases:
        assert dbs.scalar(node.name, "SELECT @@binlog_expire_logs_seconds") == 7 * 24 * 3600
