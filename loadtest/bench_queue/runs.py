"""Per acknowledgement level: throughput, publish-to-ack latency, and what a killed stream leader
loses."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from typing import Any

from loadtest.bench_queue.cluster import Cluster, Node, connect, fresh_stream, wait_for_cluster
from loadtest.harness.stats import percentile

MESSAGES = int(os.environ.get("BENCH_QUEUE_MESSAGES", "20000"))
WINDOW = int(os.environ.get("BENCH_QUEUE_WINDOW", "256"))
SAMPLES = int(os.environ.get("BENCH_QUEUE_SAMPLES", "1000"))
FAULT_S = float(os.environ.get("BENCH_QUEUE_FAULT_S", "6"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PAYLOAD = b"x" * 200
LEVELS = ("core", "R1", "R3")


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
