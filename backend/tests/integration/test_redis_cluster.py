"""The cache on a Redis Cluster: three masters started here on loopback (Debian's redis-server in
cluster mode), the cache's own scripts and invalidation run against them.

A cluster runs a script only when every key it names hashes to one slot. Each read's script
names the key, its stampede lock and its admission counter; the keys' hash tag ({user:<id>})
puts the three in one slot, while the keys spread over the masters.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, ResponseError

from app.cache import Cache, CachePolicy, Outcome
from app.cache.entries import GET_OR_LOCK
from app.resilience.breaker import BreakerPolicy, CircuitBreaker
from app.services import cache_keys
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration
MASTERS = 3
# A node's cluster bus listens on its port + 10000.
BUS_OFFSET = 10000


def free_ports(count: int) -> list[int]:
    """COUNT ports of loopback free now, each with its bus port (+10000) free too."""
    ports: list[int] = []
    for port in range(17401, 17501):
        if len(ports) == count:
            break
        if all(is_free(p) for p in (port, port + BUS_OFFSET)):
            ports.append(port)
    assert len(ports) == count, "no free ports for a test cluster"
    return ports


def is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A 3-master cluster with a password of its own, stopped (and its folder removed) after."""
    folder: Path = tmp_path_factory.mktemp("redis-cluster")
    password = "s" + secrets.token_hex(16)
    ports = free_ports(MASTERS)
    servers = [
        subprocess.Popen(
            [
                "redis-server",
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(folder),
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf",
                "--requirepass", password,
                "--masterauth", password,
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(folder / f"{port}.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]  # fmt: skip
    try:
        for port in ports:
            node = Redis(port=port, password=password)
            eventually(node.ping, timeout=10)
        subprocess.run(
            ["redis-cli", "-a", password, "--no-auth-warning", "--cluster", "create"]
            + [f"127.0.0.1:{port}" for port in ports]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        eventually(
            lambda: all(
                Redis(port=p, password=password).cluster("info")["cluster_state"] == "ok"
                for p in ports
            ),
            timeout=15,
        )
        client = RedisCluster(host="127.0.0.1", port=ports[0], password=password)
        yield client
        client.close()
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=10)


def test_the_test_cluster_has_three_masters_and_user_keys_spread_over_them(
    cluster: RedisCluster,
) -> None:
    primaries = cluster.get_primaries()  # type: ignore[no-untyped-call]
    assert len(primaries) == MASTERS
    holders = {
        cluster.get_node_from_key(cache_keys.user(i)).name  # type: ignore[no-untyped-call]
        for i in range(1, 60)
    }
    assert len(holders) == MASTERS


def test_a_key_without_a_hash_tag_is_refused_with_its_lock_and_counter(
    cluster: RedisCluster,
) -> None:
    """What the cache's keys were (c1:user:<id>): the read's script names three slots."""
    script = cluster.register_script(GET_OR_LOCK)
    old = "c1:user:7"
    with pytest.raises((RedisClusterException, ResponseError), match=r"(?i)slot"):
        script(keys=[old, f"{old}:lock", f"{old}:seen"], args=["token", 1000, 0])


def test_the_cache_reads_fills_and_invalidates_on_the_cluster(cluster: RedisCluster) -> None:
    cache = Cache(
        cluster,  # type: ignore[arg-type]  # the cluster client answers what the cache calls
        CircuitBreaker("redis-cluster", BreakerPolicy()),
        CachePolicy(admission_window_s=0),
    )
    loads: list[str | None] = []

    def load(tombstone: str | None) -> tuple[int, bytes]:
        loads.append(tombstone)
        return 200, b'{"id": 7}'

    for user_id in range(1, 31):  # keys on every master
        key = cache_keys.user(user_id)
        assert cache.read(key, load).outcome == Outcome.MISS
        assert cache.read(key, load).outcome == Outcome.HIT
    key = cache_keys.user(7)
    assert cache.invalidate([key, cache_keys.posts(7)], "0-1-42")
    before = len(loads)
    served = cache.read(key, load)
    assert (served.outcome, loads[before:]) == (Outcome.MISS, ["0-1-42"])
    assert cache.read(key, load).outcome == Outcome.HIT
