"""The launcher is idempotent: `up` on a running or stopped stack keeps every piece of data."""

from __future__ import annotations

import pytest

from tests.integration.conftest import launcher
from tests.integration.helpers import Api, Databases

pytestmark = pytest.mark.integration


def snapshot(dbs: Databases) -> tuple[object, ...]:
    return (
        dbs.scalar("primary", "SELECT COUNT(*) FROM users"),
        dbs.scalar("primary", "SELECT COALESCE(MAX(updated_at), 0) FROM users"),
        tuple(dbs.data_checksum()),
    )


def test_up_twice_leaves_the_same_data(api: Api, dbs: Databases) -> None:
    user = api.create_user("Katherine", "Johnson")
    before = snapshot(dbs)
    output = launcher("up").stdout
    assert "datadir exists, kept" in output
    assert snapshot(dbs) == before
    assert api.get(f"/api/users/{user['id']}").json() == user


def test_up_on_a_stopped_stack_keeps_the_data(api: Api, dbs: Databases) -> None:
    user = api.create_user("Margaret", "Hamilton")
    dbs.wait_replicated()
    before = snapshot(dbs)
    launcher("down")
    launcher("up")
    assert snapshot(dbs) == before
    assert api.get(f"/api/users/{user['id']}").json() == user


def test_status_lists_every_process(dbs: Databases) -> None:
    output = launcher("status").stdout
    names = [
        "mysql-primary",
        "mysql-replica-1",
        "mysql-replica-2",
        "redis",
        "heartbeat",
        "api-1",
        "api-2",
        "api-3",
        "nginx",
    ]
    for name in names:
        assert any(line.startswith(name) and "RUNNING" in line for line in output.splitlines())
