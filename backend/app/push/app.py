"""The push service's ASGI app: GET /api/stream/posts and GET /api/users/{id}/stream.

Each stream answers ``text/event-stream``: first ``retry:`` and a ``ready`` event whose id is
the position the stream starts from (so a client that reconnects before any post resumes from
there, not from "now"), then one ``post`` event per new post with ``id:`` = its stream sequence,
and a comment line every PUSH_HEARTBEAT_S while idle. A client that sends ``Last-Event-ID`` gets
exactly the posts after it; a position the stream no longer has (or never had) gets a ``reload``
event instead, then the stream from now. A new client starts from when nginx received its
request (``X-Stream-Requested-At``), not from when this process got to it: a stream that waited
for a frozen process and then came here misses no post made meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from app import logs
from app.metrics import exposition
from app.push import metrics, sse
from app.push.config import PushSettings
from app.push.feed import Feed
from app.push.log import Client, Log

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)
ALL_POSTS = "/api/stream/posts"
USER_POSTS = re.compile(r"^/api/users/([1-9][0-9]{0,18})/stream$")
MAX_ID = 2**63 - 1
# uvicorn's line when an app returns mid-response: what dropping a slow client does on purpose.
UNFINISHED = "ASGI callable returned without completing response."


class DroppedOnPurpose(logging.Filter):
    """Keeps uvicorn's 'returned without completing response' out of the log: the push app
    does that only when it drops a client, and logs the drop itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != UNFINISHED


class PushApp:
    """One push process: its feed, its log of recent posts and its open streams."""

    def __init__(self, settings: PushSettings) -> None:
        self.settings = settings
        self.log = Log(settings.push_replay_events)
        self.feed = Feed(settings, self.log)
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.http(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                logs.configure(self.settings.log_level, self.settings.push_name)
                logging.getLogger("uvicorn.error").addFilter(DroppedOnPurpose())
                await self.feed.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.feed.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id", "")
        reply = Reply(send, self.settings.push_name, request_id)
        if path == "/healthz":
            state: dict[str, Any] = {"status": "ok" if self.feed.ready.is_set() else "starting"}
            state |= {"streams": self.open, "sequence": self.log.head}
            if self.feed.problem:
                state["problem"] = self.feed.problem
            await reply.json(200, state)
            return
        if path == "/metrics":
            body, content_type = exposition()
            await reply.raw(200, content_type, body)
            return
        user_id: int | None = None
        if path != ALL_POSTS:
            match = USER_POSTS.match(path)
            if not match or int(match.group(1)) > MAX_ID:
                await reply.problem(404, "Not Found", "No such stream.")
                return
            user_id = int(match.group(1))
        if method not in ("GET", "HEAD"):
            await reply.problem(405, "Method Not Allowed", "Streams are read with GET.", "GET")
            return
        try:
            cursor = sse.last_event_id(headers.get("last-event-id"))
        except sse.BadLastEventId as error:
            await reply.problem(400, "Bad Request", str(error))
            return
        if not self.feed.ready.is_set():
            metrics.REFUSED.labels("starting").inc()
            await reply.problem(503, "Service Unavailable", "The stream is starting; retry.")
            return
        if self.open >= self.settings.push_max_streams:
            metrics.REFUSED.labels("full").inc()
            detail = f"This push process holds its most streams ({self.settings.push_max_streams})."
            await reply.problem(503, "Service Unavailable", detail + " Retry shortly.")
            return
        asked = self.opened_at(headers.get("x-stream-requested-at", "")) if cursor is None else None
        self.open += 1
        metrics.STREAMS.set(self.open)
        metrics.OPENED.inc()
        try:
            await self.stream(reply, receive, method == "HEAD", user_id, cursor, asked)
        finally:
            self.open -= 1
            metrics.STREAMS.set(self.open)

    def opened_at(self, requested_at: str) -> int | None:
        """Where a new stream starts: after the posts made before nginx received it (its
        X-Stream-Requested-At, seconds since the epoch), so a stream that waited for a frozen
        process, then went to this one, has every post made since it was asked for. None (from
        now) without the header, or when it is older than PUSH_OPEN_LOOKBACK_S or not a time."""
        try:
            asked = float(requested_at)
        except ValueError:
            return None
        if not 0 <= time.time() - asked <= self.settings.push_open_lookback_s:
            return None
        return self.log.position_before(datetime.fromtimestamp(asked, UTC))

    async def stream(
        self,
        reply: Reply,
        receive: Receive,
        head_only: bool,
        user_id: int | None,
        cursor: int | None,
        asked: int | None = None,
    ) -> None:
        """Serve one stream: from CURSOR (Last-Event-ID) when given, else from ASKED (where the
        stream began when nginx received it, see opened_at) or from now."""
        client = Client(user_id, self.settings.push_client_buffer)
        try:
            reason = "" if cursor is None else await self.feed.too_old_or_unknown(cursor)
            await reply.start_stream()
            if head_only:
                await reply.end()
                return
            await reply.body(sse.retry(self.settings.push_retry_ms))
            # A new client (or one told to reload) starts from here: the id makes a reconnect
            # before the first post resume from this point. A resuming client keeps its own id.
            fresh = cursor is None or bool(reason)
            if reason or cursor is None:
                start = self.log.head if reason or asked is None else asked
            else:
                start = cursor
            about = {"position": start, "served_by": self.settings.push_name, "resumed": not fresh}
            about |= {"reason": reason} if reason else {}
            kind = "reload" if reason else "ready"
            await reply.body(sse.event(kind, about, start if fresh else None))
            sender = asyncio.create_task(self.pump(reply, client, start))
            watcher = asyncio.create_task(disconnected(receive))
            dropped = asyncio.create_task(client.gone.wait())
            tasks = {sender, watcher, dropped}
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=1)
            if client.dropped:
                log.warning("dropped a slow client (%d posts waiting)", client.queue.qsize())
                reply.abort()
        finally:
            self.log.clients.discard(client)

    async def pump(self, reply: Reply, client: Client, cursor: int) -> None:
        """Write the replay after CURSOR, then every new post, then heartbeats while idle."""
        while True:
            async for post in self.feed.replay(cursor):
                if post.seq > cursor and (client.user_id in (None, post.user_id)):
                    await reply.body(post.frame)
                    metrics.SENT.inc()
                cursor = max(cursor, post.seq)
            if self.log.join(client, cursor):  # nothing left to replay: live from here
                break
        heartbeat = self.settings.push_heartbeat_s
        while not client.dropped:
            try:
                # Each queued post at once, without a task per post; a wait only when idle.
                post = client.queue.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    async with asyncio.timeout(heartbeat):
                        post = await client.queue.get()
                except TimeoutError:
                    await reply.body(sse.comment("heartbeat"))
                    continue
            if post.seq <= cursor:
                continue  # already sent by the replay
            cursor = post.seq
            await reply.body(post.frame)
            metrics.SENT.inc()


async def disconnected(receive: Receive) -> None:
    """Return when the client has gone."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Reply:
    """The answer to one request: headers every answer carries, and the body in pieces."""

    def __init__(self, send: Send, served_by: str, request_id: str) -> None:
        self.send = send
        self.common = [(b"x-served-by", served_by.encode())]
        if request_id:
            self.common.append((b"x-request-id", request_id.encode("latin-1")))

    async def raw(
        self,
        status: int,
        content_type: str,
        body: bytes,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        headers = [(b"content-type", content_type.encode()), *self.common, *extra]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    async def json(self, status: int, document: dict[str, Any]) -> None:
        await self.raw(status, "application/json", json.dumps(document).encode())

    async def problem(self, status: int, title: str, detail: str, allow: str = "") -> None:
        document = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        extra = [(b"cache-control", b"no-store")]
        if status == 503:
            extra.append((b"retry-after", b"1"))
        if allow:
            extra.append((b"allow", allow.encode()))
        body = json.dumps(document).encode()
        await self.raw(status, "application/problem+json", body, tuple(extra))

    async def start_stream(self) -> None:
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            # nginx: pass each event on at once (the location says so too).
            (b"x-accel-buffering", b"no"),
            *self.common,
        ]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})

    async def body(self, chunk: bytes) -> None:
        await self.send({"type": "http.response.body", "body": chunk, "more_body": True})

    def abort(self) -> None:
        """Reset the connection now, with whatever it still had to send: closing it would wait
        for a client that does not read to take those bytes first. uvicorn keeps the transport
        on the object whose method ``send`` is; any other server closes it the usual way."""
        transport = getattr(getattr(self.send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()

    async def end(self) -> None:
        with contextlib.suppress(Exception):
            await self.send({"type": "http.response.body", "body": b""})
