"""One rung of the ladder: C streams open on push-1, posts written meanwhile, its memory before
and after."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from loadtest.bench_push.clients import collect, open_clients
from loadtest.bench_push.config import RATE, SECONDS
from loadtest.harness.memory import children_rss
from loadtest.harness.stats import percentile
from stack.settings import Stack


def worker_rss(stack: Stack, name: str) -> int:
    """RSS in bytes of push process NAME's worker (gunicorn's child, which holds the streams)."""
    return children_rss(int((stack.state / "run" / f"{name}.pid").read_text().split()[0]))


def write_posts(stack: Stack, key: str, user_id: int, stop: threading.Event) -> int:
    count, interval = 0, 1.0 / RATE
    with requests.Session() as session:
        next_at = time.monotonic()
        while not stop.is_set():
            answer = session.post(
                f"{stack.base_url}/api/users/{user_id}/posts",
                json={"body": f"bench {count}"},
                headers={"X-API-Key": key},
                timeout=10,
            )
            answer.raise_for_status()
            count += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    return count


def level(stack: Stack, key: str, user_id: int, streams: int) -> dict[str, Any]:
    port = stack.pushes[0].port
    rss_before = worker_rss(stack, stack.pushes[0].name)
    procs = open_clients(port, streams, "posts")
    try:
        time.sleep(1)
        rss_after = worker_rss(stack, stack.pushes[0].name)
        stop = threading.Event()
        timer = threading.Timer(SECONDS, stop.set)
        timer.start()
        posts = write_posts(stack, key, user_id, stop)
        time.sleep(2)  # the last posts' way through
        latencies = collect(procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return {
        "streams": streams,
        "posts": posts,
        "delivered": len(latencies),
        "expected": posts * streams,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "kib_per_stream": (rss_after - rss_before) / 1024 / streams,
    }
