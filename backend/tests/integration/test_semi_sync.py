"""Lossless semi-synchronous replication (MYSQL_SEMI_SYNC=on, AFTER_SYNC), its fallback to
asynchronous replication when no replica answers, and how /readyz shows it."""

from __future__ import annotations

import time

import pytest

from stack.settings import Stack
from tests.integration.helpers import Api, Databases, eventually

pytestmark = pytest.mark.integration


def semi_sync_state(api: Api) -> tuple[str, list[str], bool]:
    """The primary's semi_sync state in /readyz, the degraded list, and whether it is writable."""
    body = api.readyz().json()
    return body["checks"]["primary"]["semi_sync"], body["degraded"], body["writable"]


def test_every_node_runs_lossless_semi_sync(api: Api, dbs: Databases, stack: Stack) -> None:
    timeout_ms = int(stack.env["MYSQL_SEMI_SYNC_TIMEOUT_MS"])
    settings = dbs.query(
        "primary",
        "SELECT @@rpl_semi_sync_master_enabled, @@rpl_semi_sync_master_wait_point, "
        "@@rpl_semi_sync_master_timeout",
    )
    assert settings == [(1, "AFTER_SYNC", timeout_ms)]
    for replica in stack.replicas:
        assert dbs.scalar(replica.name, "SELECT @@rpl_semi_sync_slave_enabled") == 1
        status = dbs.query(replica.name, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_slave_status'")
        assert status == [("Rpl_semi_sync_slave_status", "ON")]
    eventually(lambda: semi_sync_state(api)[0] == "on", timeout=15)


def test_with_no_replica_the_primary_falls_back_says_so_and_returns_with_one(
    api: Api, dbs: Databases, stack: Stack
) -> None:
    timeout_s = int(stack.env["MYSQL_SEMI_SYNC_TIMEOUT_MS"]) / 1000
    for replica in stack.replicas:  # no replica receives or acknowledges anything now
        dbs.query(replica.name, "STOP REPLICA IO_THREAD")
    try:
        # The heartbeat writes every second, so the one wait of MYSQL_SEMI_SYNC_TIMEOUT_MS may
        # fall on it rather than on a client's write; after it the primary is asynchronous.
        eventually(lambda: semi_sync_state(api)[0] == "fallen_back", timeout=timeout_s + 10)
        started = time.monotonic()
        api.create_user("Semi", "Sync")
        assert time.monotonic() - started < timeout_s  # no wait for a replica any more
        state, degraded, writable = semi_sync_state(api)
        assert (state, "semi_sync" in degraded, writable) == ("fallen_back", True, True)
    finally:
        for replica in stack.replicas:
            dbs.query(replica.name, "START REPLICA IO_THREAD")
    # A replica that caught up acknowledges again, and the primary is semi-synchronous again.
    eventually(lambda: semi_sync_state(api)[0] == "on", timeout=30)
    assert "semi_sync" not in semi_sync_state(api)[1]

    def clients() -> int:
        rows = dbs.query("primary", "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")
        return int(rows[0][1])

    eventually(lambda: clients() == len(stack.replicas), timeout=30)
