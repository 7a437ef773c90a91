"""With the primary stopped: writes fail fast with 503 and Retry-After; reads keep working."""

from __future__ import annotations

import time

import pytest
import requests

from stack.settings import Stack
from tests.integration.conftest import supervisorctl
from tests.integration.helpers import Api, Databases, eventually, metric_total

pytestmark = pytest.mark.integration


def test_with_the_primary_down_writes_get_503_and_reads_continue(
    api: Api, stack: Stack, dbs: Databases, api_key: str
) -> None:
    user = api.create_user("Primary", "Outage")
    dbs.wait_replicated()
    assert api.get(f"/api/users/{user['id']}").status_code == 200  # now cached too
    supervisorctl("stop", "mysql-primary")
    try:
        started = time.monotonic()
        write = requests.post(
            f"{stack.base_url}/api/users",
            json={"name": "Lost", "second_name": "Write"},
            headers={"X-API-Key": api_key},
            timeout=10,
        )
        assert write.status_code == 503
        assert write.headers["Retry-After"]
        assert write.headers["Content-Type"] == "application/problem+json"
        assert time.monotonic() - started < 3.0
        # Uncached reads: a replica serves, even once the monitor ejects it (no fresher node).
        for _ in range(10):
            read = requests.get(
                f"{stack.base_url}/api/users?limit=1&after={user['id'] - 1}", timeout=10
            )
            assert read.status_code == 200
            assert read.json()["items"][0]["id"] == user["id"]
            assert read.headers["X-DB-Node"].startswith("replica-")
        cached = requests.get(f"{stack.base_url}/api/users/{user['id']}", timeout=10)
        assert cached.status_code == 200
        # Repeated failures open each worker's primary breaker: then writes are refused
        # without even a connection attempt, and /readyz shows it.
        writes = [
            requests.post(
                f"{stack.base_url}/api/users",
                json={"name": "Lost", "second_name": "Write"},
                headers={"X-API-Key": api_key},
                timeout=10,
            )
            for _ in range(30)
        ]
        assert {w.status_code for w in writes} == {503}
        assert any("circuit open" in w.json()["detail"] for w in writes)
        breakers = {api.readyz().json()["checks"]["primary"]["breaker"] for _ in range(12)}
        assert breakers & {"open", "half_open"}, breakers
        # Degraded, not unready: reads are served, and readiness must not take them away.
        ready = api.readyz()
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["writable"] is False
        assert ready.json()["checks"]["primary"]["status"] == "down"
    finally:
        supervisorctl("start", "mysql-primary")
    eventually(lambda: api.readyz().json()["writable"], timeout=30)

    def every_worker_writes_again() -> bool:
        # A worker's breaker closes when one of its own calls gets through, up to BREAKER_OPEN_S
        # after the primary is back: until then that worker still answers 503. Later tests
        # must not meet one, so drive writes until no worker reports its breaker open.
        for _ in range(6):
            api.post("/api/users", json={"name": "Back", "second_name": "Again"})
        return metric_total(stack, 'breaker_open{breaker="primary"}') == 0

    eventually(every_worker_writes_again, timeout=30)
    dbs.wait_replicated(timeout=30)
