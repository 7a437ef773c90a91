"""Least privilege: each account can do its job and nothing else."""

from __future__ import annotations

import pymysql
import pytest

from tests.integration.helpers import Databases

pytestmark = pytest.mark.integration
ACCESS_DENIED = {1044, 1045, 1142, 1227, 1370}


def connect(
    dbs: Databases, node: str, user: str, password: str
) -> pymysql.Connection[pymysql.cursors.Cursor]:
    port = dbs.node(node).port
    return pymysql.connect(
        host=dbs.stack.host,
        port=port,
        user=user,
        password=password,
        autocommit=True,
        connect_timeout=3,
        ssl_disabled=True,  # the stack's nodes have no TLS; PyMySQL would try it
    )


def denied(conn: pymysql.Connection[pymysql.cursors.Cursor], statement: str) -> bool:
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
    except (pymysql.err.OperationalError, pymysql.err.ProgrammingError) as error:
        return error.args[0] in ACCESS_DENIED
    return False


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM mysql.user",
        "CREATE DATABASE other_schema",
        "CREATE USER 'intruder'@'%' IDENTIFIED BY 'x'",
        "SET GLOBAL read_only = 0",
    ],
)
def test_the_app_user_cannot_leave_its_schema(dbs: Databases, statement: str) -> None:
    env = dbs.stack.env
    conn = connect(dbs, "primary", env["MYSQL_APP_USER"], env["MYSQL_APP_PASSWORD"])
    try:
        assert denied(conn, statement)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM app.users LIMIT 1",
        "DELETE FROM app.users",
        "SELECT * FROM mysql.user",
    ],
)
def test_the_replication_user_can_only_stream_the_binlog(dbs: Databases, statement: str) -> None:
    env = dbs.stack.env
    conn = connect(dbs, "primary", env["MYSQL_REPL_USER"], env["MYSQL_REPL_PASSWORD"])
    try:
        assert denied(conn, statement)
        with conn.cursor() as cursor:
            cursor.execute("SHOW GRANTS")
            grants = " ".join(row[0] for row in cursor.fetchall())
        assert "REPLICATION SLAVE" in grants
        assert "ALL PRIVILEGES" not in grants
    finally:
        conn.close()


def test_the_replica_enforces_read_only_for_the_app(dbs: Databases) -> None:
    assert dbs.scalar("replica-1", "SELECT @@global.read_only") == 1
