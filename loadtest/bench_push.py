"""`make bench-push`: how many live streams one push process holds, what each costs, and how fast
a new post reaches them, measured on the running stack (`make up` first; 127.0.0.1 only).

For each number of streams C in BENCH_PUSH_STREAMS (a ladder), the bench

1. opens C streams straight to push-1 (its own port: one process is what is measured), from
   BENCH_PUSH_CLIENTS client processes of its own (asyncio, plain sockets);
2. reads push-1's memory (its worker's RSS) before and after: memory per open stream;
3. writes posts through nginx and the API at BENCH_PUSH_RATE per second for BENCH_PUSH_SECONDS,
   one after another, while every client notes when each post arrives: the delivery latency is
   arrival minus the post's created_at (its commit on the primary, the same machine's clock),
   the whole path: API, outbox, relay, the 3-copy stream, the push process's ordered consumer,
   its fan-out, the socket;
4. closes the streams.

The most streams one process holds on this machine is the largest C whose p99 stays under 1 s.
Prints a table, writes a section of docs/benchmarks.md and imgs/push-bench.png.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from loadtest.docs import replace_section
from loadtest.stats import percentile
from stack import processes
from stack.exempt import launcher_up
from stack.keys import ensure_key
from stack.settings import REPO, Stack, load_stack
from stack.waiting import until

CHART = REPO / "imgs" / "push-bench.png"
LADDER = [int(n) for n in os.environ.get("BENCH_PUSH_STREAMS", "250,500,1000,2000,4000").split(",")]
CLIENTS = int(os.environ.get("BENCH_PUSH_CLIENTS", "2"))
RATE = float(os.environ.get("BENCH_PUSH_RATE", "5"))
SECONDS = float(os.environ.get("BENCH_PUSH_SECONDS", "10"))
P99_BOUND_S = 1.0


def parse_time(raw: bytes) -> float:
    return datetime.fromisoformat(raw.decode().replace("Z", "+00:00")).timestamp()


async def one_stream(port: int, latencies: list[float], opened: list[int]) -> None:
    """Read one stream until cancelled; note each post's delivery latency."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/stream/posts HTTP/1.1\r\nHost: bench\r\n\r\n")
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"stream refused: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    opened[0] += 1
    marker = b'"created_at":"'
    try:
        while line := await reader.readline():
            if line.startswith(b"data: ") and marker in line:
                start = line.index(marker) + len(marker)
                latencies.append(time.time() - parse_time(line[start : line.index(b'"', start)]))
    finally:
        writer.close()


async def client(port: int, streams: int, kind: str = "posts") -> None:
    """One client process: STREAMS streams; 'ready' once all are open; latencies as JSON on a
    line of their own once stdin closes."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    latencies: list[float] = []
    opened = [0]
    tasks = []
    for _ in range(streams):
        read = one_stream if kind == "posts" else tick_stream
        tasks.append(asyncio.create_task(read(port, latencies, opened)))
        await asyncio.sleep(0.001)  # a ramp, not a SYN flood
    while opened[0] < streams:
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise SystemExit(f"a stream failed: {failed[0].exception()}")
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(latencies), flush=True)


async def tick_stream(port: int, latencies: list[float], opened: list[int]) -> None:
    """Read one stream of the worker-class comparison: each tick's delivery latency."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /stream HTTP/1.1\r\nHost: bench\r\n\r\n")
    if b" 200 " not in await reader.readline():
        raise RuntimeError("stream refused")
    opened[0] += 1
    try:
        while line := await reader.readline():
            if line.startswith(b"data: "):
                latencies.append(time.time() - float(line[6:]))
    finally:
        writer.close()


def worker_rss(stack: Stack, name: str) -> int:
    """RSS in bytes of push process NAME's worker (gunicorn's child, which holds the streams)."""
    return children_rss(int((stack.state / "run" / f"{name}.pid").read_text().split()[0]))


def children_rss(master: int) -> int:
    """RSS in bytes of the children of process MASTER (gunicorn's workers)."""
    total = 0
    for pid, (ppid, _, _) in processes.scan().items():
        if ppid == master:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


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


def open_clients(port: int, streams: int, kind: str) -> list[subprocess.Popen[str]]:
    """CLIENTS client processes holding STREAMS streams on PORT between them, all open."""
    share = [streams // CLIENTS + (1 if i < streams % CLIENTS else 0) for i in range(CLIENTS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "loadtest.bench_push", "client", str(port), str(n), kind],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in share
        if n
    ]
    ready: list[str] = []

    def first_line(proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        ready.append(proc.stdout.readline().strip())

    readers = [threading.Thread(target=first_line, args=(proc,)) for proc in procs]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=120)
    if ready.count("ready") != len(procs):
        for proc in procs:
            proc.kill()
        raise SystemExit(f"the clients could not open {streams} streams within 120 s")
    return procs


def collect(procs: list[subprocess.Popen[str]]) -> list[float]:
    """Close the clients' streams; every latency they noted, sorted."""
    latencies: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        latencies += json.loads(out.strip().splitlines()[-1])
    return sorted(latencies)


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


def wait_for_port(port: int, timeout: float = 20) -> None:
    import socket

    def listens() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    until(listens, timeout, f"a listener on 127.0.0.1:{port}", 0.1)


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


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| streams on one process | posts | delivered / expected | delivery p50 ms | p99 ms | "
        "memory per stream KiB |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['streams']:,} | {row['posts']} | {row['delivered']:,} / {row['expected']:,} | "
            f"{row['p50'] * 1000:.0f} | {row['p99'] * 1000:.0f} | {row['kib_per_stream']:.1f} |"
        )
    return "\n".join(lines)


def chart(rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = [r["streams"] for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.plot(streams, [r["p50"] * 1000 for r in rows], marker="o", label="p50")
    left.plot(streams, [r["p99"] * 1000 for r in rows], marker="o", label="p99")
    left.axhline(P99_BOUND_S * 1000, color="#c62828", linestyle="--", label="1 s")
    left.set_xscale("log")
    left.set_xticks(streams, [f"{s:,}" for s in streams])
    left.minorticks_off()
    left.set_xlabel("open streams on one push process")
    left.set_ylabel("commit → client, ms")
    left.legend()
    right.bar([str(s) for s in streams], [r["kib_per_stream"] for r in rows], color="#5c6bc0")
    right.set_xlabel("open streams")
    right.set_ylabel("push worker memory per stream, KiB")
    figure.suptitle(f"make bench-push: posts at {RATE:g}/s to C streams of one push process")
    figure.tight_layout()
    figure.savefig(CHART, dpi=110)
    plt.close(figure)


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
