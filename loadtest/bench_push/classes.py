"""The same idle streams under three gunicorn worker classes (loadtest/push_workers_app.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from loadtest.bench_push.clients import collect, open_clients
from loadtest.harness.memory import children_rss
from loadtest.harness.stats import percentile
from loadtest.harness.waits import wait_for_port
from stack.settings import REPO

WORKER_CLASSES = {
    "uvicorn (asyncio), the choice": ["-k", "uvicorn_worker.UvicornWorker", "{app}:asgi"],
    "gevent": ["-k", "gevent", "--worker-connections", "{room}", "{app}:wsgi"],
    "gthread (a thread per stream)": [
        *("-k", "gthread", "--threads", "{room}", "--worker-connections", "{room}"),
        "{app}:wsgi",
    ],
}


COMPARE_STREAMS = [int(n) for n in os.environ.get("BENCH_PUSH_COMPARE", "500,2000").split(",")]
COMPARE_PORT = int(os.environ.get("BENCH_PUSH_COMPARE_PORT", "39100"))
COMPARE_SECONDS = 5.0


def compare_worker_classes() -> list[dict[str, Any]]:
    """The same idle-stream server under each gunicorn worker class (push_workers_app.py): memory
    per open stream and tick delivery latency, with C streams open, one class after another."""
    rows = []
    for streams in COMPARE_STREAMS:
        for name, arguments in WORKER_CLASSES.items():
            args = [a.format(app="loadtest.push_workers_app", room=streams + 50) for a in arguments]
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    *("-w", "1", "--timeout", "120", "--graceful-timeout", "1"),
                    *("-b", f"127.0.0.1:{COMPARE_PORT}"),
                    *args,
                ],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_for_port(COMPARE_PORT)
                time.sleep(0.5)
                before = children_rss(server.pid)
                procs = open_clients(COMPARE_PORT, streams, "ticks")
                try:
                    time.sleep(1)
                    after = children_rss(server.pid)
                    time.sleep(COMPARE_SECONDS)
                finally:
                    latencies = collect(procs)
            finally:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            row: dict[str, Any] = {
                "class": name,
                "streams": streams,
                "p50": percentile(latencies, 0.5),
                "p99": percentile(latencies, 0.99),
                "kib_per_stream": (after - before) / 1024 / streams,
            }
            rows.append(row)
            print(
                f"{name:<32} {streams:>5} streams: {row['kib_per_stream']:.1f} KiB per stream, "
                f"tick p50 {row['p50'] * 1000:.1f} ms, p99 {row['p99'] * 1000:.1f} ms",
                flush=True,
            )
    return rows


def classes_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| worker class | open streams | memory per stream KiB | tick p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['class']} | {row['streams']:,} | {row['kib_per_stream']:.1f} | "
            f"{row['p50'] * 1000:.1f} | {row['p99'] * 1000:.1f} |"
        )
    return "\n".join(lines)
