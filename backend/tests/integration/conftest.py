"""The integration test stack: a whole native stack of its own, started by the project's launcher.

It has its own state dir and ports, so `make test` never touches a stack the user is running.
It is torn down (and its state removed) at the end, unless KEEP_TEST_STACK=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from stack.keys import create_key, ensure_key
from stack.settings import REPO, Stack, load_stack
from tests.integration.helpers import Api, Databases

TEST_STACK_ENV = {
    "STACK_DIR": ".stack-test",
    "NGINX_PORT": "18080",
    "NGINX_INTERNAL_PORT": "18081",
    "NGINX_TLS_PORT": "18443",
    "STAGE_PORT": "18087",
    # The tests' own load comes from 127.0.0.1; the ones about nginx's limits use other
    # loopback addresses (127.0.0.2, ...), which stay limited.
    "NGINX_RATE_LIMIT_EXEMPT": "127.0.0.1/32",
    "API_BASE_PORT": "18001",
    "MYSQL_PRIMARY_PORT": "13308",
    "MYSQL_REPLICA_PORTS": "13307,13309",
    "REDIS_PORT": "16380",
    "NATS_CLIENT_PORTS": "14222,14223,14224",
    "NATS_CLUSTER_PORTS": "16222,16223,16224",
    "RELAY_METRICS_BASE_PORT": "19101",
    "WORKER_METRICS_BASE_PORT": "19111",
    "EDGE_PURGER_METRICS_PORT": "19121",
    "PUSH_BASE_PORT": "18101",
    # Push: a heartbeat each second (tests wait for one), room for the 50 clients of the kill
    # test on one survivor, a small per-address cap and a small slow-client buffer to reach.
    "PUSH_HEARTBEAT_S": "1",
    "PUSH_MAX_STREAMS": "60",
    "PUSH_STREAMS_PER_ADDRESS": "8",
    "PUSH_CLIENT_BUFFER": "32",
    "REPLICAS": "2",
    "API_REPLICAS": "3",
    "APP_ENV": "test",
    # The tests' own clients use one critical key from many threads: give it room, so that
    # tests about other things never meet its limit. Limits are tested with keys of their own.
    "RATE_LIMIT_CRITICAL_PER_S": "1000",
    "RATE_LIMIT_CRITICAL_BURST": "2000",
    # The tests are about the paths behind nginx's edge cache, and many read one id twice within
    # its TTL: an edge copy would answer them. test_edge_cache.py turns it on, as `make up` has it.
    "EDGE_CACHE": "off",
}


def launcher(
    command: str, overrides: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the native launcher on the test stack, with OVERRIDES of its settings; its output is
    returned for assertions."""
    result = subprocess.run(
        [sys.executable, "-m", "stack", command],
        cwd=REPO,
        env={**os.environ, **TEST_STACK_ENV, **(overrides or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise AssertionError(f"stack {command} failed:\n{result.stdout}\n{result.stderr}")
    return result


def supervisorctl(*args: str) -> str:
    """Control the test stack's processes (stop a replica, restart Redis, ...)."""
    state = REPO / TEST_STACK_ENV["STACK_DIR"]
    result = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "supervisorctl"),
            "-c",
            str(state / "supervisord.conf"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Start the test stack once for the whole session; remove it at the end, also when it did
    not come up (a stack left running from a failed `up` would hold the test ports and its
    processes would keep talking to the next run's servers with old secrets)."""
    os.environ.update(TEST_STACK_ENV)
    try:
        launcher("up")
        yield load_stack()
    finally:
        if os.environ.get("KEEP_TEST_STACK") != "1":
            launcher("clean")


@pytest.fixture(scope="session")
def api_key(stack: Stack) -> str:
    """A critical-tier key the tests write with."""
    return ensure_key(stack, "tests", "critical")


@pytest.fixture(scope="session")
def keys(stack: Stack) -> Callable[[str], str]:
    """Makes a fresh key of a tier (a bucket of its own for each test that needs one)."""
    return lambda tier: create_key(stack, f"test-{tier}", tier)


@pytest.fixture(scope="session")
def dbs(stack: Stack) -> Databases:
    return Databases(stack)


@pytest.fixture
def api(stack: Stack, api_key: str) -> Iterator[Api]:
    """An HTTP client whose paths go through the test stack's nginx; it writes with a key."""
    with Api(stack.base_url, api_key, stack.internal_url) as client:
        yield client
