"""`make bench-queue`: what each acknowledgement level costs and what it keeps, measured in one run.

The levels are the notes' Kafka ack levels on NATS JetStream (docs/messaging.md):

* **core** (acks=0): a core NATS publish into a subject a one-copy stream captures; no ack at all.
* **R1** (acks=1): a JetStream publish to a stream with one copy; acked once its leader stored it.
* **R3** (acks=all): a JetStream publish to a stream with three copies; acked once two stored it.

The bench starts a 3-node cluster of its own from nats/nats-server.conf on 127.0.0.1
(BENCH_NATS_BASE_PORT onwards, data under .stack-bench-queue/), and, per level, in
BENCH_ROUNDS interleaved rounds:

1. **throughput**: BENCH_QUEUE_MESSAGES messages of 200 bytes, pipelined
   (BENCH_QUEUE_WINDOW in flight; core: published, then one flush);
2. **latency**: BENCH_QUEUE_SAMPLES publishes one after another, publish to ack (core: to the
   flush's round trip, the moment the server has it);
3. **loss**: a publisher sends for BENCH_QUEUE_FAULT_S seconds, one message after another; in the
   middle the node leading the level's stream is killed with SIGKILL and, once the run is over,
   started again, first with its disk, then (a second run) with its disk lost. Counted: messages
   acknowledged (core: sent) and how many of those the stream does not hold afterwards.

Prints a table, writes a section of docs/benchmarks.md and imgs/queue-ack-levels.png. Everything
it started is stopped at the end; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from nats.js.api import StorageType, StreamConfig

from loadtest.docs import replace_section
from loadtest.stats import percentile
from stack.settings import REPO

BASE_PORT = int(os.environ.get("BENCH_NATS_BASE_PORT", "34222"))
MESSAGES = int(os.environ.get("BENCH_QUEUE_MESSAGES", "20000"))
WINDOW = int(os.environ.get("BENCH_QUEUE_WINDOW", "256"))
SAMPLES = int(os.environ.get("BENCH_QUEUE_SAMPLES", "1000"))
FAULT_S = float(os.environ.get("BENCH_QUEUE_FAULT_S", "6"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
STATE = REPO / ".stack-bench-queue"
CONF = REPO / "nats" / "nats-server.conf"
CHART = REPO / "imgs" / "queue-ack-levels.png"
PAYLOAD = b"x" * 200
USER, PASSWORD = "bench", "bench-only-password"
ROUTE_USER, ROUTE_PASSWORD = "route", "bench-only-route-password"
LEVELS = ("core", "R1", "R3")
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


async def throughput(cluster: Cluster, level: str, tag: str) -> float:
    """Messages per second, MESSAGES pipelined with WINDOW in flight."""
    nc = await connect(cluster)
    js = nc.jetstream()
    subject = await fresh_stream(js, level, tag)
    started = time.perf_counter()
    if level == "core":
        for _ in range(MESSAGES):
            await nc.publish(subject, PAYLOAD)
        await nc.flush()
    else:
        sent = 0
        while sent < MESSAGES:
            batch = min(WINDOW, MESSAGES - sent)
            await asyncio.gather(*(js.publish(subject, PAYLOAD) for _ in range(batch)))
            sent += batch
    elapsed = time.perf_counter() - started
    await nc.close()
    return MESSAGES / elapsed


async def latencies(cluster: Cluster, level: str, tag: str) -> list[float]:
    """SAMPLES publish-to-ack times in ms, one after another."""
    nc = await connect(cluster)
    js = nc.jetstream()
    subject = await fresh_stream(js, level, tag)
    found = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        if level == "core":
            await nc.publish(subject, PAYLOAD)
            await nc.flush()
        else:
            await js.publish(subject, PAYLOAD)
        found.append((time.perf_counter() - started) * 1000)
    await nc.close()
    return found


async def stream_leader(js: Any, level: str, tag: str) -> str:
    info = await js.stream_info(f"BENCH_{level}_{tag}")
    return str(info.cluster.leader)


async def loss(cluster: Cluster, level: str, tag: str, disk_lost: bool) -> dict[str, Any]:
    """Publish one by one for FAULT_S, SIGKILL the stream's leader halfway; restart it afterwards
    (its store deleted first when DISK_LOST). Acknowledged (core: sent) and lost of those."""
    nc = await connect(cluster)
    js = nc.jetstream()
    subject = await fresh_stream(js, level, tag)
    leader = await stream_leader(js, level, tag)
    acked: list[int] = []
    errors = 0
    started = time.monotonic()
    killed: Node | None = None
    number = 0
    while time.monotonic() - started < FAULT_S:
        if killed is None and time.monotonic() - started >= FAULT_S / 2:
            killed = cluster.kill(leader)
        number += 1
        body = str(number).encode()
        try:
            if level == "core":
                await nc.publish(subject, body)
            else:
                await js.publish(subject, body, timeout=1)
            acked.append(number)
        except Exception:  # not acknowledged: the publisher knows it failed
            errors += 1
            await asyncio.sleep(0.01)
    await nc.flush()
    assert killed is not None
    if disk_lost:
        shutil.rmtree(killed.store, ignore_errors=True)
    cluster.start(killed)
    if level == "core":
        # Millions sent, each once and never acknowledged: what is missing is the difference.
        lost = len(acked) - await stored_count(js, level, tag)
    else:
        lost = len(set(acked) - await stored_numbers(js, level, tag))
    await nc.close()
    return {"acked": len(acked), "errors": errors, "lost": lost}


async def stored_count(js: Any, level: str, tag: str, timeout: float = 60) -> int:
    """How many messages the stream holds, once it answers again (0 when it is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return int((await js.stream_info(f"BENCH_{level}_{tag}")).state.messages)
        except Exception:
            if time.monotonic() > deadline:
                return 0
            await asyncio.sleep(0.5)


async def stored_numbers(js: Any, level: str, tag: str, timeout: float = 60) -> set[int]:
    """The message bodies the stream holds, once it answers again (a one-copy stream answers
    once its node is back)."""
    name = f"BENCH_{level}_{tag}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = await js.stream_info(name)
            found = set()
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                message = await js.get_msg(name, seq)
                found.add(int(message.data))
            return found
        except Exception:
            if time.monotonic() > deadline:
                return set()  # the stream is gone with its disk
            await asyncio.sleep(0.5)


async def run(cluster: Cluster) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {lv: {"rate": [], "lat": []} for lv in LEVELS}
    for round_number in range(1, ROUNDS + 1):
        print(f"round {round_number} of {ROUNDS}", flush=True)
        for level in LEVELS:
            tag = f"r{round_number}"
            rate = await throughput(cluster, level, f"t{tag}")
            lat = await latencies(cluster, level, f"l{tag}")
            results[level]["rate"].append(rate)
            results[level]["lat"] += lat
            print(
                f"  {level:<4} {rate:9,.0f} msg/s  p50 {percentile(lat, 0.5):.2f} ms  "
                f"p99 {percentile(lat, 0.99):.2f} ms",
                flush=True,
            )
    for level in LEVELS:
        for disk_lost in (False, True):
            key = "lost_disk" if disk_lost else "lost_kill"
            outcome = await loss(cluster, level, f"f{int(disk_lost)}", disk_lost)
            await wait_for_cluster(cluster)
            results[level][key] = outcome
            print(f"  {level:<4} leader killed{' + disk lost' if disk_lost else ''}: {outcome}")
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    r3 = statistics.median(results["R3"]["rate"])
    lines = [
        "| level | like Kafka's | msg/s (median) | ÷ R3 | publish p50 ms | p99 ms | "
        "leader killed: acked (core: sent) / lost | leader killed, disk lost: acked / lost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    kafka = {"core": "acks=0", "R1": "acks=1", "R3": "acks=all"}
    for level in LEVELS:
        found = results[level]
        rate = statistics.median(found["rate"])
        kill, disk = found["lost_kill"], found["lost_disk"]
        lines.append(
            f"| {level} | {kafka[level]} | {rate:,.0f} | {rate / r3:.2f} | "
            f"{percentile(found['lat'], 0.5):.2f} | {percentile(found['lat'], 0.99):.2f} | "
            f"{kill['acked']:,} / **{kill['lost']:,}** | {disk['acked']:,} / **{disk['lost']:,}** |"
        )
    return "\n".join(lines)


def chart(results: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [statistics.median(results[lv]["rate"]) for lv in LEVELS]
    p99 = [percentile(results[lv]["lat"], 0.99) for lv in LEVELS]
    lost = [
        100 * results[lv]["lost_disk"]["lost"] / max(results[lv]["lost_disk"]["acked"], 1)
        for lv in LEVELS
    ]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for axis, values, title in zip(
        axes,
        (rates, p99, lost),
        (
            "throughput, msg/s",
            "publish p99, ms",
            "% of acknowledged (core: sent) lost\nleader killed, its disk lost",
        ),
        strict=True,
    ):
        axis.bar(LEVELS, values, color=["#90a4ae", "#7e57c2", "#2e7d32"])
        axis.set_title(title, fontsize=10)
        for x, value in enumerate(values):
            axis.annotate(
                f"{value:,.0f}" if value >= 10 else f"{value:.2f}",
                (x, value),
                ha="center",
                va="bottom",
                fontsize=9,
            )
    figure.suptitle(
        "make bench-queue: NATS JetStream ack levels (core ≈ acks=0, R1 ≈ acks=1, R3 ≈ acks=all)"
    )
    figure.tight_layout()
    figure.savefig(CHART, dpi=110)
    plt.close(figure)


def main() -> None:
    """Start the bench's cluster, measure, report, stop it."""
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    # Stopped from outside (timeout, kill): the cluster it started is stopped all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cluster = Cluster()
    try:
        for node in cluster.nodes:
            cluster.start(node)
        asyncio.run(wait_for_cluster(cluster))
        results = asyncio.run(run(cluster))
    finally:
        cluster.stop()
        shutil.rmtree(STATE, ignore_errors=True)
    print("\n" + table(results))
    chart(results)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        "### The message queue's ack levels: what each costs, what each keeps\n\n"
        f"`make bench-queue`, {stamp}: {MESSAGES:,} messages of 200 bytes per throughput run "
        f"({WINDOW} in flight), {SAMPLES:,} sequential publishes for latency, {ROUNDS} interleaved "
        f"rounds; loss: one publisher, one message after another for {FAULT_S:.0f} s, the stream's "
        f"leader killed (SIGKILL) halfway.\n\n{table(results)}\n\n"
        "How to read it: a core publish is only handed to the client's buffer (no ack, no flow "
        "control), so *sent* counts what the client took, and what went to the dead node is "
        "gone. R1 comes back whole after a kill -9 (its one copy is on the node's disk) and "
        "loses every acknowledged message with that disk; R3 loses none either way (two other "
        "copies had each one before its ack). The relay publishes at R3 "
        "(`EVENTS_STREAM_REPLICAS`).\n\n"
        "![ack levels](../imgs/queue-ack-levels.png)"
    )
    replace_section(REPO / "docs" / "benchmarks.md", "bench-queue", body)


if __name__ == "__main__":
    main()
