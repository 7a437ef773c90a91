"""A near cache: each worker keeps hot cache entries in memory, invalidated by Redis itself.

A Redis hit still costs a round trip, about a quarter of a request's budget here. Entries read
from Redis are also kept in the worker for up to ``ttl_s`` (30 s; never past the entry's own
expiry), and Redis tells every worker when a key changes: server-assisted client-side caching
in broadcast mode. Every write sets a marker ``changed:<cache key>`` next to the tombstone it
leaves (fills do not, so they wake nobody). Each worker holds two connections of its own: one
subscribed to ``__redis__:invalidate``, and one that turned on ``CLIENT TRACKING ON REDIRECT
<subscriber> BCAST PREFIX changed:`` and then stays idle. Redis sends the name of every marker
that changes to the subscriber, and the worker drops that cache key. A lost
subscription empties the near cache and turns it off until the subscription is back, so the
only staleness left is the delivery time of one message.

A read that carries a consistency token skips the near cache (it goes to Redis, which the write
updated before its response left), so read-your-writes does not depend on message delivery.

The same markers tell each worker which keys were written lately: a key with no marker in the
last ``watch_s`` (the tombstone's lifetime), heard over a subscription alive all that time, holds
no tombstone in Redis either (``unchanged``). A marker's expiry is broadcast like a write, a
second after it (invalidation.py), and counts as one: it only moves the watch's start later.
A read of such a key that must see no particular write may then skip Redis (reads.py's direct
loads).

A busy process hears a marker late: its listener thread runs only when the request thread lets
it, and a read that nginx's edge keeps for long must not trust a word not yet heard
(docs/caching.md). Such a read first asks ``caught_up``: whether every marker that has reached
this process (its socket) has been applied. Redis writes a write's markers to every subscriber
before anything that follows the write can purge the edge (the purge comes from an event that
the write's own pipeline wakes, or a worker's nudge sent after its invalidation), so a read that
finds its process caught up after a purge has heard that purge's write.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections import OrderedDict
from typing import Any

from redis import Redis
from redis.connection import Connection
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
CHANNEL = "__redis__:invalidate"
# How long `caught_up` waits for the listener to finish applying what it is reading.
CATCH_UP_WAIT_S = 0.005
ADDRESS_OPTIONS = ("host", "port", "db", "username", "password", "socket_connect_timeout")


class NearCache:
    """Per-process LRU of entries, valid while Redis keeps this process's subscription."""

    def __init__(
        self, redis: Redis, prefix: str, ttl_s: float, max_entries: int, watch_s: float = 0.0
    ) -> None:
        """REDIS is the data client; PREFIX marks the keys whose changes are broadcast; WATCH_S
        is how long a write's tombstone lives (0: `unchanged` never vouches for a key)."""
        self.redis, self.prefix, self.ttl_s, self.max_entries = redis, prefix, ttl_s, max_entries
        self.watch_s = watch_s
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._changed: dict[str, int] = {}  # key -> sequence number of its last invalidation
        self._changed_at: dict[str, float] = {}  # key -> when its last marker came (monotonic)
        self._prune_at = 10_000
        self._heard_since: float | None = None  # every marker since then was heard (monotonic)
        self._sequence = 0
        self._subscribed_at = 0  # reads that began earlier may have missed an invalidation
        self._lock = threading.Lock()
        # Held by the listener while it reads and applies what arrived; outside it, everything
        # read from the subscription has been applied, and the rest is in the socket.
        self._reading = threading.Lock()
        self._socket: socket.socket | None = None
        self.redirect_id: int | None = None  # None: no subscription, near cache off

    def start(self) -> None:
        """Subscribe in a background thread (again and again, should the subscription drop)."""
        if self.ttl_s > 0:
            threading.Thread(target=self._run, name="near-cache", daemon=True).start()

    def mark(self) -> int:
        """Remember when a read started, to refuse a put that an invalidation overtook."""
        with self._lock:
            return self._sequence

    def get(self, key: str) -> Any | None:
        """The entry, if held, fresh and the subscription is alive."""
        if self.redirect_id is None:
            return None
        with self._lock:
            held = self._entries.get(key)
            if held is None or held[0] < time.monotonic():
                return None
            self._entries.move_to_end(key)
            return held[1]

    def unchanged(self, key: str) -> bool:
        """Whether no write touched KEY within the last `watch_s`, as far as this process heard
        every marker over that whole time (a subscription that dropped, or a flush, starts the
        count again). Left open: the delivery time of the one marker in flight."""
        heard_since = self._heard_since
        if self.watch_s <= 0 or self.redirect_id is None or heard_since is None:
            return False
        now = time.monotonic()
        if now - heard_since < self.watch_s:
            return False
        changed_at = self._changed_at.get(key)
        return changed_at is None or now - changed_at > self.watch_s

    def caught_up(self) -> bool:
        """Whether every marker that reached this process has been applied: the subscription
        is alive, the listener is not in the middle of applying, and nothing waits in its
        socket (False when in doubt: the caller asks Redis instead)."""
        sock = self._socket
        if sock is None or self.redirect_id is None:
            return False
        if not self._reading.acquire(timeout=CATCH_UP_WAIT_S):
            return False
        try:
            waiting = select.poll()
            waiting.register(sock, select.POLLIN)
            return not waiting.poll(0)
        except (OSError, ValueError):  # closed meanwhile
            return False
        finally:
            self._reading.release()

    def put(self, key: str, value: Any, since: int, fresh_for_s: float) -> None:
        """Keep VALUE for at most FRESH_FOR_S, unless KEY changed after its read began (SINCE)."""
        if self.redirect_id is None or fresh_for_s <= 0:
            return
        with self._lock:
            if since < self._subscribed_at or self._changed.get(key, -1) > since:
                return
            self._entries[key] = (time.monotonic() + min(self.ttl_s, fresh_for_s), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def _invalidate(self, keys: list[bytes] | None) -> None:
        with self._lock:
            self._sequence += 1
            if keys is None:  # Redis flushed: forget everything
                self._entries.clear()
                self._changed.clear()
                self._changed_at.clear()
                self._heard_since = time.monotonic()
                return
            now = time.monotonic()
            for raw in keys:
                key = raw.decode().removeprefix(self.prefix)
                self._entries.pop(key, None)
                self._changed[key] = self._sequence
                self._changed_at[key] = now
            if len(self._changed_at) > self._prune_at:  # only the last watch_s matter
                self._changed_at = {
                    k: t for k, t in self._changed_at.items() if now - t <= self.watch_s
                }
                self._prune_at = max(10_000, 2 * len(self._changed_at))
            if len(self._changed) > 100_000:  # old marks only matter for reads in flight
                self._changed = {
                    k: s for k, s in self._changed.items() if s > self._sequence - 1000
                }

    def _run(self) -> None:
        while True:
            try:
                self._subscribe_and_listen()
            except (RedisError, OSError) as error:
                log.warning("near cache off: subscription lost", extra={"error": str(error)})
            self.redirect_id = None
            self._socket = None
            with self._lock:
                self._entries.clear()
                self._heard_since = None
            time.sleep(1.0)

    def _connection(self) -> Connection:
        # The data client's address and credentials; RESP2, so that invalidations arrive as
        # plain pub/sub messages; no read timeout, the subscriber waits for them.
        kwargs = self.redis.connection_pool.connection_kwargs
        address = {k: kwargs[k] for k in ADDRESS_OPTIONS if k in kwargs}
        conn = Connection(**address, protocol=2, socket_timeout=None)
        conn.connect()
        return conn

    def _subscribe_and_listen(self) -> None:
        subscriber, tracker = self._connection(), self._connection()
        try:
            subscriber.send_command("CLIENT", "ID")
            client_id = int(subscriber.read_response())
            subscriber.send_command("SUBSCRIBE", CHANNEL)
            subscriber.read_response()
            tracker.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", "PREFIX", self.prefix
            )
            tracker.read_response()
            with self._lock:
                self._sequence += 1
                self._subscribed_at = self._sequence
                self._heard_since = time.monotonic()
            sock = subscriber._sock
            if sock is None:
                raise OSError("the subscription has no socket")
            self._socket = sock
            self.redirect_id = client_id
            log.info("near cache on", extra={"redirect_id": client_id})
            arrived = select.poll()
            arrived.register(sock, select.POLLIN)
            while True:
                self._wait(arrived)
                with self._reading:
                    self._apply_what_arrived(subscriber)
        finally:
            subscriber.disconnect()
            tracker.disconnect()

    def _wait(self, arrived: select.poll) -> None:
        """Until the subscription is readable; outside the lock: `caught_up` sees what waits."""
        arrived.poll()

    def _apply_what_arrived(self, subscriber: Connection) -> None:
        """Read and apply every message the subscription holds (at least one: it is readable;
        a closed socket raises ConnectionError)."""
        while True:
            message = subscriber.read_response()
            if isinstance(message, list) and len(message) == 3 and message[0] == b"message":
                self._invalidate(message[2])
            if not subscriber.can_read(timeout=0):
                return
