"""An API replica that is stopped (SIGTERM) finishes what it holds; nginx routes around it."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from stack.settings import Stack
from tests.integration.conftest import supervisorctl
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration


def test_stopping_an_api_replica_under_load_fails_no_request(stack: Stack) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        session = requests.Session()
        while not stop.is_set():
            response = session.get(f"{stack.base_url}/api/users?limit=1", timeout=10)
            statuses.append(response.status_code)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        supervisorctl("stop", "api-2")  # SIGTERM: gunicorn drains, then exits
        stopped_at = len(statuses)
        time.sleep(1.0)
        assert len(statuses) > stopped_at  # traffic kept flowing to api-1 and api-3
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        supervisorctl("start", "api-2")
    assert statuses
    assert set(statuses) == {200}
    eventually(
        lambda: (
            "api-2"
            in {
                requests.get(f"{stack.base_url}/healthz", timeout=5).headers.get("X-Served-By")
                for _ in range(12)
            }
        ),
        timeout=20,
    )


def test_with_no_api_replica_up_nginx_answers_a_502_problem_that_says_502(stack: Stack) -> None:
    names = [api.name for api in stack.apis]
    supervisorctl("stop", *names)
    try:
        response = requests.get(
            f"{stack.base_url}/api/users/1", headers={"X-Request-ID": "edge-502"}, timeout=10
        )
    finally:
        supervisorctl("start", *names)
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["X-Request-ID"] == "edge-502"
    problem = response.json()
    assert (problem["status"], problem["title"]) == (502, "Bad Gateway")
    eventually(
        lambda: (
            {
                requests.get(f"{stack.base_url}/healthz", timeout=5).headers.get("X-Served-By")
                for _ in range(15)
            }
            == set(names)
        ),
        timeout=30,
    )
