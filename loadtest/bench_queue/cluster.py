"""The bench's own 3-node JetStream cluster (nats/nats-server.conf, ports from
BENCH_NATS_BASE_PORT): started, killed and restarted by the bench alone."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.js.api import StorageType, StreamConfig

from stack.settings import REPO

BASE_PORT = int(os.environ.get("BENCH_NATS_BASE_PORT", "34222"))
STATE = REPO / ".stack-bench-queue"
CONF = REPO / "nats" / "nats-server.conf"
USER, PASSWORD = "bench", "bench-only-password"
ROUTE_USER, ROUTE_PASSWORD = "route", "bench-only-route-password"
NODES = ("q-1", "q-2", "q-3")


@dataclass
class Node:
    """One node of the bench's own cluster."""

    name: str
    index: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_port(self) -> int:
        return BASE_PORT + self.index

    @property
    def store(self) -> Path:
        return STATE / self.name


def cluster_port(node: Node) -> int:
    return BASE_PORT + 100 + node.index


@dataclass
class Cluster:
    """The bench's 3-node JetStream cluster: started, killed and restarted by the bench alone."""

    nodes: list[Node] = field(default_factory=lambda: [Node(n, i) for i, n in enumerate(NODES)])

    def env(self, node: Node) -> dict[str, str]:
        routes = ", ".join(
            f"nats-route://{ROUTE_USER}:{ROUTE_PASSWORD}@127.0.0.1:{BASE_PORT + 100 + n.index}"
            for n in self.nodes
        )
        return {
            **os.environ,
            "NATS_SERVER_NAME": node.name,
            "NATS_HOST": "127.0.0.1",
            "NATS_CLIENT_PORT": str(node.client_port),
            "NATS_CLUSTER_PORT": str(cluster_port(node)),
            "NATS_MONITOR_ADDRESS": f"127.0.0.1:{BASE_PORT + 200 + node.index}",
            "NATS_PID_FILE": str(STATE / f"{node.name}.pid"),
            "NATS_STORE_DIR": str(node.store),
            "NATS_ROUTES": f"[{routes}]",
            "NATS_CLUSTER_NAME": "bench-queue",
            "NATS_MAX_FILE_STORE": "2GB",
            # The bench's client creates its streams and publishes: the admin user, with every
            # right; the roles' users exist because the shared config names them.
            "NATS_ADMIN_USER": USER,
            "NATS_ADMIN_PASSWORD": PASSWORD,
            **{f"NATS_{role}_USER": role.lower() for role in ("RELAY", "WORKER", "READER")},
            **{
                f"NATS_{role}_PASSWORD": f"bench-only-{role.lower()}-password"
                for role in ("RELAY", "WORKER", "READER")
            },
            "NATS_ROUTE_USER": ROUTE_USER,
            "NATS_ROUTE_PASSWORD": ROUTE_PASSWORD,
            "NATS_SYSTEM_USER": "system",
            "NATS_SYSTEM_PASSWORD": "bench-only-system-password",
        }

    def start(self, node: Node) -> None:
        node.store.mkdir(parents=True, exist_ok=True)
        log = (STATE / f"{node.name}.log").open("ab")
        node.process = subprocess.Popen(
            ["/usr/sbin/nats-server", "-c", str(CONF)], env=self.env(node), stdout=log, stderr=log
        )

    def kill(self, name: str) -> Node:
        node = next(n for n in self.nodes if n.name == name)
        assert node.process is not None
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()
        node.process = None
        return node

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                node.process = None

    @property
    def servers(self) -> list[str]:
        return [f"nats://127.0.0.1:{n.client_port}" for n in self.nodes]


async def quiet(_error: Exception) -> None:
    """The client's errors while a node is down on purpose: expected, counted elsewhere."""


async def connect(cluster: Cluster) -> Any:
    return await nats.connect(
        servers=cluster.servers,
        error_cb=quiet,
        user=USER,
        password=PASSWORD,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
        connect_timeout=2,
    )


async def fresh_stream(js: Any, level: str, tag: str) -> str:
    """A new stream for LEVEL (one copy for core and R1, three for R3); its subject."""
    name = f"BENCH_{level}_{tag}"
    subject = f"bench.{level}.{tag}"
    replicas = 3 if level == "R3" else 1
    await js.add_stream(
        StreamConfig(name=name, subjects=[subject], num_replicas=replicas, storage=StorageType.FILE)
    )
    return subject


def meta_leaders(cluster: Cluster) -> set[str]:
    """The metadata leader each node names on its monitoring port ('' when it names none)."""
    leaders = set()
    for node in cluster.nodes:
        url = f"http://127.0.0.1:{BASE_PORT + 200 + node.index}/jsz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                leaders.add(str((json.load(response).get("meta_cluster") or {}).get("leader", "")))
        except (OSError, ValueError):
            leaders.add("")
    return leaders


async def wait_for_cluster(cluster: Cluster, timeout: float = 60) -> None:
    """Until every node names one metadata leader, and a stream with three copies can be made."""
    deadline = time.monotonic() + timeout
    while len(leaders := meta_leaders(cluster)) != 1 or "" in leaders:
        if time.monotonic() > deadline:
            raise SystemExit(f"the bench's cluster has no single leader: {leaders}")
        await asyncio.sleep(0.3)
    while True:
        try:
            nc = await connect(cluster)
            try:
                await fresh_stream(nc.jetstream(), "R3", f"probe{time.monotonic_ns()}")
                return
            finally:
                await nc.close()
        except Exception:  # not ready yet: the deadline decides
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
