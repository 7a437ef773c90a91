"""Invalidation after a commit: tombstones for the keys a write touched, never lost to an outage.

Each write replaces its keys with tombstones of its GTID (entries.py) and touches their
``changed:`` markers. When Redis misses that, the tombstones are kept in this process and written
before it reads the cache again, and by a background thread every ``retry_s``, around the
breaker: a tombstone that waited for this worker's next read, or for its breaker to close, would
let every other worker serve the old entry meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from redis import Redis
from redis.exceptions import RedisError

from app.cache.entries import CacheUnavailable, changed_key, encode_tombstone
from app.gtid import newest

T = TypeVar("T")
MARKER_TTL_MS = 1000  # how long a write's "changed" marker lives (its expiry wakes workers too)
log = logging.getLogger(__name__)


class Invalidations:
    """Tombstones to write: this write's, and any that failed while Redis was away."""

    def __init__(
        self,
        redis: Redis,
        call: Callable[[Callable[[], int]], int],
        tombstone_ttl_s: float,
        retry_s: float,
    ) -> None:
        """CALL runs a Redis call under the cache's breaker (CacheUnavailable when it fails)."""
        self.redis, self._call = redis, call
        self.tombstone_ttl_s, self.retry_s = tombstone_ttl_s, retry_s
        self._pending: dict[str, str] = {}  # key -> GTID of invalidations Redis has not seen
        self._notify: set[str] = set()  # channels to publish on with them
        self._lock = threading.Lock()
        self._missed = threading.Event()  # set while invalidations wait for Redis

    def invalidate(self, keys: list[str], gtid: str, notify: tuple[str, ...] = ()) -> bool:
        """After a commit, replace KEYS with tombstones of GTID and publish a word on each NOTIFY
        channel (who listens learns that a write committed); False if Redis missed it."""
        with self._lock:
            for key in keys:
                self._pending[key] = newest(self._pending.get(key), gtid) or ""
            self._notify.update(notify)
        try:
            self.flush()
        except CacheUnavailable:
            self._missed.set()
            return False
        return True

    def flush(self) -> None:
        """Write the pending tombstones, if any (CacheUnavailable when Redis cannot take them)."""
        if self._pending or self._notify:
            self._call(self._write_pending)

    def _write_pending(self) -> int:
        """Write the pending tombstones; returns how many keys that took."""
        with self._lock:
            pending, notify = dict(self._pending), set(self._notify)
        if not pending and not notify:
            return 0
        ttl_ms = int(self.tombstone_ttl_s * 1000)
        pipe = self.redis.pipeline(transaction=False)
        for key, gtid in pending.items():
            pipe.set(key, encode_tombstone(gtid), px=ttl_ms)
            # Writes also touch the key's "changed" marker, which near caches watch: fills
            # rewrite cache keys all the time, and must not wake every worker. The marker's
            # expiry is broadcast too, as if written again: kept short, it ends a key's watch
            # (near.unchanged) a second after the tombstone's start, not a tombstone later.
            pipe.set(changed_key(key), gtid, px=min(ttl_ms, MARKER_TTL_MS))
        for channel in notify:
            pipe.publish(channel, b"")
        pipe.execute()
        with self._lock:
            for key, gtid in pending.items():
                if self._pending.get(key) == gtid:
                    del self._pending[key]
            self._notify -= notify
        return len(pending)

    def start_retrying(self) -> None:
        """Retry missed invalidations in a background thread (a no-op when the interval is 0)."""
        if self.retry_s > 0:
            threading.Thread(
                target=self._retry_forever, name="cache-invalidations", daemon=True
            ).start()

    def _retry_forever(self) -> None:
        while True:
            self._missed.wait()  # asleep until an invalidation misses
            time.sleep(self.retry_s)
            self.retry_once()

    def retry_once(self) -> int:
        """Write what is pending, around the breaker; how many keys that took."""
        try:
            written = self._write_pending()  # bounded by the client's socket timeout
        except RedisError:
            return 0
        self._missed.clear()
        if self._pending:  # missed again meanwhile
            self._missed.set()
        if written:  # else a read's flush wrote them first
            log.info("missed cache invalidations written", extra={"keys": written})
        return written
