"""The same idle-stream server three ways, for `make bench-push`'s worker-class comparison: a tick
every BENCH_TICK_S sent to every open stream as an SSE event carrying its send time.

``wsgi`` runs under gunicorn's gevent worker (greenlets; gunicorn patches threading) and its
gthread worker (a thread per stream); ``asgi`` under uvicorn's worker (asyncio), the push
service's choice. No broker: what differs is only how each holds and wakes its streams.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

TICK_S = float(os.environ.get("BENCH_TICK_S", "0.2"))
HEADERS = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")]

_tick: list[float] = [0.0, 0.0]  # send time, number
_changed = threading.Condition()
_ticker: list[threading.Thread] = []


def _tick_forever() -> None:
    while True:
        time.sleep(TICK_S)
        with _changed:
            _tick[:] = [time.time(), _tick[1] + 1]
            _changed.notify_all()


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    """One stream: a line per tick (thread or greenlet waits on a condition)."""
    if not _ticker:
        _ticker.append(threading.Thread(target=_tick_forever, daemon=True))
        _ticker[0].start()
    start_response("200 OK", HEADERS)
    return _events()


def _events() -> Iterator[bytes]:
    seen = _tick[1]
    yield b": open\n\n"
    while True:
        with _changed:
            while _tick[1] == seen:
                _changed.wait()
            sent, seen = _tick
        yield f"data: {sent}\n\n".encode()


_streams: set[asyncio.Queue[float]] = set()
_async_ticker: list[asyncio.Task[None]] = []


async def _async_tick_forever() -> None:
    while True:
        await asyncio.sleep(TICK_S)
        now = time.time()
        for queue in _streams:
            queue.put_nowait(now)


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """One stream: a line per tick (a coroutine waits on its queue)."""
    if scope["type"] != "http":
        return
    if not _async_ticker:
        _async_ticker.append(asyncio.create_task(_async_tick_forever()))
    headers = [(k.lower().encode(), v.encode()) for k, v in HEADERS]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b": open\n\n", "more_body": True})
    queue: asyncio.Queue[float] = asyncio.Queue()
    _streams.add(queue)
    try:
        while True:
            sent = await queue.get()
            body = f"data: {sent}\n\n".encode()
            await send({"type": "http.response.body", "body": body, "more_body": True})
    finally:
        _streams.discard(queue)
