"""The client processes: each holds its share of the streams open and notes when each post
(or tick) arrives."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import threading
import time
from datetime import datetime

from loadtest.bench_push.config import CLIENTS
from stack.settings import REPO


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
