"""API keys and rate limits on the real stack: hashed keys, tiers, 429s, nginx per address."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from stack.settings import REPO, Stack
from tests.integration.conftest import TEST_STACK_ENV, supervisorctl
from tests.integration.helpers import Api, Databases, eventually, metric_total

pytestmark = pytest.mark.integration


def app_cli(*args: str) -> str:
    """The operator CLI on the test stack (python3 -m stack app ...)."""
    result = subprocess.run(
        [sys.executable, "-m", "stack", "app", *args],
        cwd=REPO,
        env={**os.environ, **TEST_STACK_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def from_address(
    stack: Stack, source: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """GET PATH through nginx from loopback address SOURCE (127.0.0.2, ...): another client."""
    conn = http.client.HTTPConnection(
        stack.host, stack.nginx_port, timeout=5, source_address=(source, 0)
    )
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_a_key_created_by_the_cli_writes_and_is_stored_only_as_a_hash(
    stack: Stack, dbs: Databases
) -> None:
    output = app_cli("keys", "create", "--tier", "standard", "--name", "hash-check")
    key = output.strip().splitlines()[-1]
    key_id, secret = key[3:15], key[16:]
    created = requests.post(
        f"{stack.base_url}/api/users",
        json={"name": "Keyed", "second_name": "Writer"},
        headers={"X-API-Key": key},
        timeout=10,
    )
    assert created.status_code == 201
    stored = dbs.query(
        "primary", "SELECT secret_sha256, tier FROM api_keys WHERE key_id = %s", key_id
    )
    assert stored[0][1] == "standard"
    assert secret not in stored[0][0]
    dump = str(dbs.query("primary", "SELECT * FROM api_keys"))
    assert secret not in dump
    assert key_id in app_cli("keys", "list")
    assert secret not in app_cli("keys", "list")


def test_a_write_needs_a_valid_key(stack: Stack) -> None:
    url, body = f"{stack.base_url}/api/users", {"name": "No", "second_name": "Key"}
    missing = requests.post(url, json=body, timeout=10)
    unknown = requests.post(
        url, json=body, headers={"X-API-Key": "zk_0123456789ab_nope"}, timeout=10
    )
    for refused in (missing, unknown):
        assert refused.status_code == 401
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.headers["WWW-Authenticate"].startswith("ApiKey")
    assert requests.get(f"{url}?limit=1", timeout=10).status_code == 200  # reads: anonymous


def test_a_revoked_key_is_refused_with_403_within_the_cache_ttl(
    stack: Stack, keys: Callable[[str], str]
) -> None:
    key = keys("standard")
    url = f"{stack.base_url}/api/users"

    def write() -> int:
        body = {"name": "Soon", "second_name": "Revoked"}
        return requests.post(url, json=body, headers={"X-API-Key": key}, timeout=10).status_code

    assert write() == 201
    app_cli("keys", "revoke", key[3:15])
    started = time.monotonic()
    eventually(lambda: all(write() == 403 for _ in range(6)), timeout=10, interval=0.5)
    assert time.monotonic() - started < float(os.environ.get("API_KEY_CACHE_TTL_S", "5")) + 2


def test_a_key_over_its_limit_gets_429_with_retry_after_and_ratelimit_headers(
    stack: Stack, keys: Callable[[str], str]
) -> None:
    key, rate, burst = keys("standard"), 20, 40  # RATE_LIMIT_STANDARD_* of .env.example
    session = requests.Session()
    session.headers["X-API-Key"] = key
    started = time.monotonic()
    answers = [session.get(f"{stack.base_url}/api/users?limit=1", timeout=10) for _ in range(120)]
    elapsed = time.monotonic() - started
    allowed = [a for a in answers if a.status_code == 200]
    limited = [a for a in answers if a.status_code == 429]
    assert len(allowed) + len(limited) == len(answers)
    assert burst <= len(allowed) <= burst + rate * elapsed + 1
    first = limited[0]
    assert first.headers["Content-Type"] == "application/problem+json"
    assert int(first.headers["Retry-After"]) >= 1
    assert first.headers["RateLimit-Remaining"] == "0"
    assert first.headers["RateLimit-Limit"] == str(burst)
    assert allowed[0].headers["RateLimit-Policy"] == f'"standard";q={burst};w=2'


def test_a_noisy_standard_client_cannot_push_a_critical_client_into_errors(
    stack: Stack, keys: Callable[[str], str]
) -> None:
    noisy, critical = keys("standard"), keys("critical")
    stop, noisy_answers = threading.Event(), Counter[int]()

    def flood() -> None:
        session = requests.Session()
        session.headers["X-API-Key"] = noisy
        while not stop.is_set():
            noisy_answers[
                session.get(f"{stack.base_url}/api/users?limit=1", timeout=10).status_code
            ] += 1

    flooders = [threading.Thread(target=flood) for _ in range(4)]
    for thread in flooders:
        thread.start()
    try:
        session = requests.Session()
        session.headers["X-API-Key"] = critical
        calm = Counter[int]()
        for n in range(60):
            if n % 3 == 0:
                body = {"name": "Critical", "second_name": f"c{n}"}
                calm[
                    session.post(f"{stack.base_url}/api/users", json=body, timeout=10).status_code
                ] += 1
            else:
                calm[
                    session.get(f"{stack.base_url}/api/users?limit=1", timeout=10).status_code
                ] += 1
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in flooders:
            thread.join()
    assert noisy_answers[429] > 0  # the noisy client was limited...
    assert calm == Counter({200: 40, 201: 20})  # ...and the critical one never was


def test_with_redis_down_critical_keys_keep_writing_and_standard_keys_get_503(
    stack: Stack, keys: Callable[[str], str]
) -> None:
    critical, standard = keys("critical"), keys("standard")
    url = f"{stack.base_url}/api/users"
    body = {"name": "Limiter", "second_name": "Down"}
    for key in (critical, standard):  # remembered by the workers before Redis goes
        assert (
            requests.post(url, json=body, headers={"X-API-Key": key}, timeout=10).status_code == 201
        )
    supervisorctl("stop", "redis")
    try:
        for _ in range(6):
            kept = requests.post(url, json=body, headers={"X-API-Key": critical}, timeout=10)
            assert kept.status_code == 201
            refused = requests.post(url, json=body, headers={"X-API-Key": standard}, timeout=10)
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) >= 1
            assert "cannot be checked" in refused.json()["detail"]
        assert requests.get(f"{url}?limit=1", timeout=10).status_code == 200  # anonymous reads
        redis_check = requests.get(f"{stack.internal_url}/readyz", timeout=10).json()["checks"][
            "redis"
        ]
        assert redis_check["rate_limits_without_redis"] == {
            "critical": "local",
            "standard": "closed",
            "refused": "local",  # refused keys' addresses: a per-worker bound, never a 503
        }
    finally:
        supervisorctl("start", "redis")
    eventually(
        lambda: (
            requests.post(url, json=body, headers={"X-API-Key": standard}, timeout=10).status_code
            == 201
        ),
        timeout=20,
        interval=0.5,
    )


def test_nginx_limits_anonymous_clients_per_address_and_ignores_forwarded_headers(
    stack: Stack, api_key: str
) -> None:
    burst = int(stack.env["NGINX_ANON_BURST"])
    path = "/healthz"  # cheap for the API: what is measured here is nginx
    spoofed = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}
    answers: list[tuple[int, dict[str, str], bytes]] = []
    deadline = time.monotonic() + 30
    # Batches until nginx refuses: over the burst, as fast as this machine can send them.
    with ThreadPoolExecutor(max_workers=8) as pool:
        while not any(a[0] == 429 for a in answers) and time.monotonic() < deadline:
            answers += pool.map(
                lambda _: from_address(stack, "127.0.0.2", path, spoofed), range(burst)
            )
    statuses = Counter(status for status, _, _ in answers)
    assert statuses[429] > 0, statuses
    assert set(statuses) <= {200, 429}, statuses
    limited = next(a for a in answers if a[0] == 429)
    assert limited[1]["Content-Type"] == "application/problem+json"
    assert limited[1]["X-Content-Type-Options"] == "nosniff"
    assert limited[1]["Retry-After"] == "1"
    assert json.loads(limited[2])["status"] == 429
    # Another address is not affected, nor is a keyed client of the API at the limited address.
    assert from_address(stack, "127.0.0.3", path, {})[0] == 200
    assert from_address(stack, "127.0.0.2", "/api/users?limit=1", {"X-API-Key": api_key})[0] == 200


def test_a_key_header_lifts_no_limit_outside_the_api(stack: Stack) -> None:
    """Only the API checks keys: on /readyz, /healthz, ... any X-API-Key (even "x") is ignored."""
    burst = int(stack.env["NGINX_ANON_BURST"])
    answers: list[int] = []
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(max_workers=8) as pool:
        while 429 not in answers and time.monotonic() < deadline:
            answers += pool.map(
                lambda _: from_address(stack, "127.0.0.4", "/healthz", {"X-API-Key": "x"})[0],
                range(burst),
            )
    assert 429 in answers, Counter(answers)


def test_a_breaker_forced_open_by_the_cli_takes_a_replica_out_until_released(
    api: Api, stack: Stack
) -> None:
    app_cli("breaker", "force", "replica-1", "open")
    try:

        def replica_1_unused() -> bool:
            nodes = {api.get("/api/users?limit=1").headers["X-DB-Node"] for _ in range(20)}
            return "replica-1" not in nodes

        eventually(replica_1_unused, timeout=10)

        # Each worker reads the override on its own (overrides.py, poll_s): the 20 reads above
        # may all meet workers that already have it while /readyz meets one a poll behind (a
        # fresh-clone run answered "closed" once), so /readyz is asked until it says so too.
        def readyz_says_forced_open() -> bool:
            check = api.readyz().json()["checks"]["replica-1"]
            return (check["breaker"], check["status"]) == ("forced_open", "breaker_open")

        eventually(readyz_says_forced_open, timeout=10)
        assert "replica-1: forced open" in app_cli("breaker", "list")
    finally:
        app_cli("breaker", "force", "replica-1", "auto")

    def replica_1_back() -> bool:
        return any(
            api.get("/api/users?limit=1").headers["X-DB-Node"] == "replica-1" for _ in range(20)
        )

    eventually(replica_1_back, timeout=10)
    # Some worker reads replica-1 again; the test ends when every worker has let the override
    # go (each polls it on its own), so that no later test meets a breaker still forced open.
    released = 'breaker_open{breaker="replica-1"}'
    eventually(lambda: metric_total(stack, released) == 0, timeout=10)


def flood(stack: Stack, source: str, key: str) -> list[tuple[int, dict[str, str], bytes]]:
    """GET /api/users/1 from SOURCE with KEY until something refuses it with 429 (30 s at most)."""
    answers: list[tuple[int, dict[str, str], bytes]] = []
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(max_workers=8) as pool:
        while not any(a[0] == 429 for a in answers) and time.monotonic() < deadline:
            answers += pool.map(
                lambda _: from_address(stack, source, "/api/users/1", {"X-API-Key": key}),
                range(50),
            )
    return answers


@pytest.mark.parametrize(
    ("source", "key", "limiter"),
    [
        # Not even shaped like a key: nginx limits it as if there were none.
        ("127.0.0.5", "junk", "nginx"),
        # Shaped like a key, but no such key: the API limits its address at the same rate.
        ("127.0.0.6", "zk_0123456789ab_" + "A" * 43, "api"),
    ],
)
def test_made_up_keys_are_limited_per_address_like_no_key(
    stack: Stack, source: str, key: str, limiter: str
) -> None:
    answers = flood(stack, source, key)
    statuses = Counter(status for status, _, _ in answers)
    assert statuses[429] > 0, statuses
    assert set(statuses) <= {401, 429}, statuses
    limited = next(a for a in answers if a[0] == 429)
    assert limited[1]["Content-Type"] == "application/problem+json"
    detail = json.loads(limited[2])["detail"]
    assert ("refused API key" in detail) is (limiter == "api"), detail
    assert from_address(stack, "127.0.0.7", "/api/users/1", {})[0] in (200, 404)
