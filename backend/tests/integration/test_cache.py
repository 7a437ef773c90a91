"""Cache-aside in front of the replicas: hits, 404s, invalidation, races, stampedes, outages."""

from __future__ import annotations

import json
import re
import select
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from redis import Redis
from redis.exceptions import AuthenticationError

from app.cache import Cache, CachePolicy, Outcome
from app.cache.entries import CHANGED_PREFIX
from app.cache.near import NearCache
from app.resilience.breaker import BreakerPolicy, CircuitBreaker, State
from app.services import cache_keys
from stack import apihttp
from stack.settings import Node, Stack
from tests.integration.conftest import supervisorctl
from tests.integration.helpers import Api, Databases, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def redis(stack: Stack) -> Redis:
    return Redis(host=stack.host, port=stack.redis_port, password=stack.env["REDIS_PASSWORD"])


def cache_loads(stack: Stack, kind: str) -> float:
    """cache_loads_total{kind} summed over every API replica's /metrics."""
    total = 0.0
    for api in stack.apis:
        text = apihttp.get(stack, api, "/metrics")[1].decode()
        match = re.search(rf'^cache_loads_total{{kind="{kind}"}} ([0-9.e+]+)$', text, re.MULTILINE)
        total += float(match.group(1)) if match else 0.0
    return total


def test_a_second_read_is_a_hit_that_touches_no_database(api: Api) -> None:
    user = api.create_user("Cache", "Me")
    first = api.get(f"/api/users/{user['id']}")
    assert (first.headers["X-Cache"], first.json()) == ("MISS", user)
    assert first.headers["X-DB-Node"] != "none"
    second = api.get(f"/api/users/{user['id']}")
    assert (second.headers["X-Cache"], second.headers["X-DB-Node"]) == ("HIT", "none")
    assert second.content == first.content


def test_a_missing_user_is_cached_as_a_404(api: Api) -> None:
    first = api.get("/api/users/8000000001")
    second = api.get("/api/users/8000000001")
    assert (first.status_code, first.headers["X-Cache"]) == (404, "MISS")
    assert (second.status_code, second.headers["X-Cache"]) == (404, "HIT")
    assert second.headers["Content-Type"] == "application/problem+json"


def test_creating_a_user_clears_its_cached_404(api: Api, dbs: Databases) -> None:
    next_id = dbs.scalar(
        "primary",
        "SELECT AUTO_INCREMENT FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users'",
    )
    assert api.get(f"/api/users/{next_id}").status_code == 404
    created = api.create_user("Born", "Later")
    assert created["id"] == next_id
    assert api.get(f"/api/users/{next_id}").json() == created


def test_patch_and_delete_invalidate_the_cached_user(api: Api) -> None:
    user = api.create_user("Old", "Name")
    api.get(f"/api/users/{user['id']}")
    api.patch(f"/api/users/{user['id']}", json={"name": "New"})
    after_patch = api.get(f"/api/users/{user['id']}")
    assert (after_patch.headers["X-Cache"], after_patch.json()["name"]) == ("MISS", "New")
    api.delete(f"/api/users/{user['id']}")
    after_delete = api.get(f"/api/users/{user['id']}")
    assert (after_delete.status_code, after_delete.headers["X-Cache"]) == (404, "MISS")


def test_a_new_post_invalidates_the_cached_first_page(api: Api) -> None:
    user = api.create_user("Poster", "Cached")
    assert api.get(f"/api/users/{user['id']}/posts").json()["items"] == []
    assert api.get(f"/api/users/{user['id']}/posts").headers["X-Cache"] == "HIT"
    api.post(f"/api/users/{user['id']}/posts", json={"body": "first!"})
    page = api.get(f"/api/users/{user['id']}/posts")
    assert page.headers["X-Cache"] == "MISS"
    assert [p["body"] for p in page.json()["items"]] == ["first!"]


def test_ttls_are_jittered(api: Api, redis: Redis) -> None:
    ids = [api.create_user(f"Jitter{i}", "T")["id"] for i in range(8)]
    for user_id in ids:
        api.get(f"/api/users/{user_id}")
    ttls = [redis.pttl(cache_keys.user(user_id)) for user_id in ids]
    assert all(ttl > 0 for ttl in ttls)
    # Written within a second of each other; without jitter they would expire within a second.
    assert max(ttls) - min(ttls) > 1000


def test_a_loader_racing_a_write_cannot_put_old_data_back(stack: Stack, redis: Redis) -> None:
    """A reader loads, a write commits and invalidates meanwhile: the old answer is not kept."""
    breaker = CircuitBreaker("redis", BreakerPolicy())
    reader, writer = Cache(redis, breaker, CachePolicy()), Cache(redis, breaker, CachePolicy())
    key = "c1:test:race"
    redis.delete(key)

    def slow_load_overtaken_by_a_write(min_gtid: str | None) -> tuple[int, bytes]:
        assert writer.invalidate([key], "0-1-999999")  # the write lands mid-load
        return 200, b'{"name":"old"}'

    served = reader.read(key, slow_load_overtaken_by_a_write)
    assert served.outcome is Outcome.MISS
    assert redis.get(key) == b"T|0-1-999999"  # the tombstone survived; the old data was dropped

    floors: list[str | None] = []

    def fresh_load(min_gtid: str | None) -> tuple[int, bytes]:
        floors.append(min_gtid)
        return 200, b'{"name":"new"}'

    assert reader.read(key, fresh_load).body == b'{"name":"new"}'
    assert floors == ["0-1-999999"]  # the next load had to see the write
    assert reader.read(key, fresh_load).outcome is Outcome.HIT


def test_a_missed_invalidation_reaches_redis_without_waiting_for_a_read(redis: Redis) -> None:
    """A write's tombstone that Redis missed (here the breaker refused the call) is written
    moments later by the worker's background retry, not only before its own next read: until
    then every other worker would serve the old entry."""
    breaker = CircuitBreaker("redis", BreakerPolicy())
    cache = Cache(redis, breaker, CachePolicy(invalidation_retry_s=0.1))
    cache.start_retrying()
    key = "c1:test:missed"
    redis.set(key, b"E|200|0|1|" + b'{"name":"old"}')
    breaker.force(State.OPEN)  # as in a worker whose breaker has not closed since an outage
    assert not cache.invalidate([key], "0-1-424242")
    eventually(lambda: redis.get(key) == b"T|0-1-424242", timeout=2)
    assert redis.get(f"changed:{key}") == b"0-1-424242"  # near caches hear of it too


class Stalled(NearCache):
    """A near cache whose listener, once GATE is cleared, sees a marker arrive but does not
    read it: a worker busy with requests, whose listener thread is not scheduled."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis, CHANGED_PREFIX, ttl_s=30, max_entries=100, watch_s=0.5)
        self.gate = threading.Event()
        self.gate.set()

    def _wait(self, arrived: select.poll) -> None:
        super()._wait(arrived)
        self.gate.wait()


def test_an_edge_fill_asks_redis_while_a_written_keys_marker_waits_unheard(redis: Redis) -> None:
    """On real Redis: a write's marker reached a worker whose listener has not run yet. The
    worker still believes the key unchanged (the hazard: a direct load from a lagging replica,
    kept at the edge), but it is not caught up, so an edge fill asks Redis and meets the
    write's tombstone; once the listener ran, the worker knows of the write."""
    breaker = CircuitBreaker("redis", BreakerPolicy())
    near = Stalled(redis)
    near.start()
    key = "c1:test:unheard"
    eventually(lambda: near.caught_up() and near.unchanged(key), timeout=5)
    near.gate.clear()
    writer = Cache(redis, breaker, CachePolicy())
    assert writer.invalidate([key], "0-1-777777")
    eventually(lambda: not near.caught_up(), timeout=2)
    assert near.unchanged(key)  # not heard yet
    reader = Cache(redis, breaker, CachePolicy(), near)
    told: list[str | None] = []

    def load(tombstone: str | None) -> tuple[int, bytes]:
        told.append(tombstone)
        return 200, b'{"name":"new"}'

    served = reader.read(key, load, direct=True, edge=True)
    assert (served.direct, told) == (False, ["0-1-777777"])
    near.gate.set()
    eventually(lambda: near.caught_up() and not near.unchanged(key), timeout=2)


def test_200_concurrent_requests_for_a_cold_key_load_it_once(api: Api, stack: Stack) -> None:
    user = api.create_user("Stampede", "Cold")
    before = cache_loads(stack, "user")

    def fetch(_: int) -> tuple[int, str, Any]:
        response = requests.get(f"{stack.base_url}/api/users/{user['id']}", timeout=30)
        return response.status_code, response.headers["X-Cache"], response.json()

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(fetch, range(200)))

    loads = cache_loads(stack, "user") - before
    assert all(status == 200 and body == user for status, _, body in results)
    assert [outcome for _, outcome, _ in results].count("MISS") == loads
    assert loads <= 2


def test_with_redis_down_reads_bypass_the_cache_and_recover(api: Api, stack: Stack) -> None:
    user = api.create_user("Redis", "Outage")
    supervisorctl("stop", "redis")
    try:
        responses = [api.get(f"/api/users/{user['id']}") for _ in range(30)]
        assert all(r.status_code == 200 and r.json() == user for r in responses)
        assert {r.headers["X-Cache"] for r in responses} == {"BYPASS"}
        assert max(r.elapsed.total_seconds() for r in responses) < 1.0
        patched = api.patch(f"/api/users/{user['id']}", json={"name": "Written"})
        assert patched.status_code == 200
        assert api.readyz().json()["checks"]["redis"]["status"] == "down"
    finally:
        supervisorctl("start", "redis")

    # The writer's token says Redis missed its invalidation: its reads skip the cache.
    own_read = api.get(f"/api/users/{user['id']}")
    assert (own_read.headers["X-Cache"], own_read.json()["name"]) == ("BYPASS", "Written")

    def cache_is_back() -> bool:
        response = requests.get(f"{stack.base_url}/api/users/{user['id']}", timeout=5)
        return response.headers["X-Cache"] == "HIT" and response.json()["name"] == "Written"

    eventually(cache_is_back, timeout=15)


def test_every_worker_drops_its_near_cached_copy_when_a_key_changes(api: Api, stack: Stack) -> None:
    user = api.create_user("Near", "Copy")
    path = f"/api/users/{user['id']}"

    def name_on(replica: Node) -> str:
        """The name replica REPLICA answers itself (on its socket or port, past nginx)."""
        return str(json.loads(apihttp.get(stack, replica, path)[1])["name"])

    for _ in range(4):  # every worker of every replica reads it: Redis hits kept in-process
        for replica in stack.apis:
            assert name_on(replica) == "Near"
    api.patch(path, json={"name": "Changed"})

    # No token: only Redis's invalidation message stands between a worker and its old copy.
    def every_worker_sees_the_change() -> bool:
        return all(name_on(replica) == "Changed" for replica in stack.apis * 4)

    eventually(every_worker_sees_the_change, timeout=1.0)


def test_redis_refuses_whoever_has_not_its_password(stack: Stack) -> None:
    """Else anyone on the host could plant a cache entry every client is then served."""
    stranger = Redis(host=stack.host, port=stack.redis_port)
    with pytest.raises(AuthenticationError):
        stranger.set(cache_keys.user(1), b'E|200|99999999999999|1|{"forged":true}')
    with pytest.raises(AuthenticationError):
        Redis(host=stack.host, port=stack.redis_port, password="guess").ping()
