"""`make bench-push` (the package's docstring says what it measures); with `client PORT N
KIND`, one of its client processes."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

import requests

from loadtest.bench_push.classes import COMPARE_SECONDS, classes_table, compare_worker_classes
from loadtest.bench_push.clients import client
from loadtest.bench_push.config import CLIENTS, LADDER, P99_BOUND_S, RATE, SECONDS
from loadtest.bench_push.ladder import level
from loadtest.bench_push.report import chart, table
from loadtest.harness.docs import replace_section
from stack.exempt import launcher_up
from stack.keys import ensure_key
from stack.settings import REPO, load_stack


def main() -> None:
    if sys.argv[1:2] == ["client"]:
        asyncio.run(client(int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5]))
        return
    classes = compare_worker_classes()
    stack = load_stack()
    most = max(LADDER)
    # Room for the ladder's top on one process, and no per-key limit on the bench's writer.
    launcher_up({"PUSH_MAX_STREAMS": str(most + 10)})
    stack = load_stack()
    key = ensure_key(stack, "loadtest", "critical")
    user = requests.post(
        f"{stack.base_url}/api/users",
        json={"name": "Bench", "second_name": "Push"},
        headers={"X-API-Key": key},
        timeout=10,
    )
    user.raise_for_status()
    rows = []
    try:
        for streams in LADDER:
            row = level(stack, key, user.json()["id"], streams)
            rows.append(row)
            print(
                f"{streams:>6} streams: p50 {row['p50'] * 1000:.0f} ms, p99 "
                f"{row['p99'] * 1000:.0f} ms, {row['kib_per_stream']:.1f} KiB per stream, "
                f"{row['delivered']:,}/{row['expected']:,} delivered",
                flush=True,
            )
    finally:
        launcher_up({})
    held = [
        r["streams"] for r in rows if r["p99"] < P99_BOUND_S and r["delivered"] == r["expected"]
    ]
    print("\n" + table(rows))
    chart(rows)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    most_held = f"{max(held):,}" if held else "none of the ladder"
    body = (
        "### Live push: streams per process, delivery latency, memory per stream\n\n"
        f"`make bench-push`, {stamp}: C streams straight to push-1 from {CLIENTS} client "
        f"processes, posts written through nginx at {RATE:g}/s for {SECONDS:g} s; latency from "
        "each post's commit to its arrival at every client (the whole path: outbox, relay, the "
        f"3-copy stream, the ordered consumer, the fan-out).\n\n{table(rows)}\n\n"
        f"Most streams one process held with p99 under {P99_BOUND_S:g} s and every post "
        f"delivered: **{most_held}** (the ladder's top is {most:,}; the clients share the "
        "machine's 2 cores with the whole stack). Delivered below expected means posts still "
        "on their way when the clients closed, 2 s after the last one, or clients dropped as "
        "too slow to read (the clients are Python processes on the same cores).\n\n"
        "![push bench](../imgs/push-bench.png)\n\n"
        "#### The worker class: the same idle streams under three gunicorn worker classes\n\n"
        f"A tick every {os.environ.get('BENCH_TICK_S', '0.2')} s to every open stream "
        "(`loadtest/push_workers_app.py`, no broker), one class after another, one worker "
        f"each, the streams open for {COMPARE_SECONDS:g} s.\n\n{classes_table(classes)}\n\n"
        "The push service runs uvicorn's asyncio worker: its broker client (nats-py) is "
        "asyncio, so the feed, its reconnects and the fan-out share one event loop; gevent "
        "would need the feed in a thread of its own and a bridge to the greenlets "
        "([push](push.md))."
    )
    replace_section(REPO / "docs" / "benchmarks.md", "bench-push", body)


if __name__ == "__main__":
    main()
