"""`make bench-queue` (the package's docstring says what it measures)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from datetime import UTC, datetime

from loadtest.bench_queue.cluster import STATE, Cluster, wait_for_cluster
from loadtest.bench_queue.report import chart, table
from loadtest.bench_queue.runs import FAULT_S, MESSAGES, ROUNDS, SAMPLES, WINDOW, run
from loadtest.harness.docs import replace_section
from stack.settings import REPO


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
