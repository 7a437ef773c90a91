"""What the cache stores under a key, its timings, and the Lua scripts that read and fill it.

A key holds one of:

* an entry ``E|status|soft_expiry_ms|delta_ms|body``: the exact response body (a 200, or a 404
  kept for a shorter, negative TTL), so a hit costs one GET and no serialisation. After its soft
  expiry an entry lives on for ``stale_grace_s``, served as STALE while one request refreshes it;
* a tombstone ``T|gtid`` written by invalidation after a write commits. A reader that meets it
  must load from a node that has applied that GTID, so a replica that lags behind the write
  cannot put the old row back.

Next to each key a write also sets ``changed:<key>``, the marker near caches watch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from app.config import default

# Set KEYS[1] to ARGV[2] (PX ARGV[3]) only if it still holds ARGV[1] ('' = nothing); then
# release the lock KEYS[2] if ARGV[4] still owns it.
FILL = """
local current = redis.call('GET', KEYS[1])
local filled = 0
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  filled = 1
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then
  redis.call('DEL', KEYS[2])
end
return filled
"""

# One round trip for every read: the value of KEYS[1]; when it holds no entry (nothing, or a
# tombstone), also try to take the stampede lock KEYS[2] for ARGV[1], expiring in ARGV[2] ms.
# Admission: a key that holds nothing is counted in KEYS[3] for ARGV[3] ms ('0': no admission);
# its first miss in that window answers 2 (load, do not fill) and takes no lock. A tombstone
# (a write in the last CACHE_TOMBSTONE_TTL_S) admits at once.
GET_OR_LOCK = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, 2) == 'E|' then
  return {value, 0}
end
if not value and ARGV[3] ~= '0' and redis.call('INCR', KEYS[3]) == 1 then
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
  return {value, 2}
end
local locked = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
return {value, locked and 1 or 0}
"""

NOT_ADMITTED = 2  # GET_OR_LOCK's answer for a first miss: load, and fill only a 404

CHANGED_PREFIX = "changed:"


class Outcome(StrEnum):
    """How a read used the cache (the X-Cache header)."""

    HIT = "HIT"
    MISS = "MISS"
    STALE = "STALE"
    BYPASS = "BYPASS"


@dataclass(frozen=True)
class Entry:
    """A cached response."""

    status: int
    body: bytes
    soft_expiry_ms: int
    delta_ms: int
    raw: bytes


@dataclass(frozen=True)
class Tombstone:
    """The mark a write leaves: readers must see at least this GTID."""

    gtid: str
    raw: bytes


@dataclass(frozen=True)
class Served:
    """What a cached read answers."""

    status: int
    body: bytes
    outcome: Outcome
    direct: bool = False  # loaded without asking Redis (reads.py, direct loads)


@dataclass(frozen=True)
class CachePolicy:
    """Timings of the cache, from settings (see .env.example)."""

    ttl_s: float = default("cache_ttl_s")
    ttl_jitter: float = default("cache_ttl_jitter")
    negative_ttl_s: float = default("cache_negative_ttl_s")
    stale_grace_s: float = default("cache_stale_grace_s")
    tombstone_ttl_s: float = default("cache_tombstone_ttl_s")
    lock_ttl_ms: int = default("cache_lock_ttl_ms")
    lock_wait_ms: int = default("cache_lock_wait_ms")
    xfetch_beta: float = default("cache_xfetch_beta")
    invalidation_retry_s: float = default("cache_invalidation_retry_s")
    admission_window_s: float = default("cache_admission_window_s")


def changed_key(key: str) -> str:
    """The marker a write sets next to cache key KEY ("c2:{user:7}" -> "changed:c2:{user:7}")."""
    return CHANGED_PREFIX + key


def now_ms() -> int:
    """Wall-clock milliseconds (entries are shared by every process)."""
    return int(time.time() * 1000)


def parse(raw: bytes | None) -> Entry | Tombstone | None:
    """Decode what a key holds."""
    if raw is None:
        return None
    if raw.startswith(b"T|"):
        return Tombstone(raw[2:].decode(), raw)
    _, status, soft, delta, body = raw.split(b"|", 4)
    return Entry(int(status), body, int(soft), int(delta), raw)


def encode_entry(status: int, soft_expiry_ms: int, delta_ms: int, body: bytes) -> bytes:
    """What a fill stores for a response."""
    return b"E|%d|%d|%d|" % (status, soft_expiry_ms, delta_ms) + body


def encode_tombstone(gtid: str) -> bytes:
    """What an invalidation stores."""
    return f"T|{gtid}".encode()


class CacheUnavailable(Exception):
    """Redis could not be used for this call (down, slow, or its breaker is open)."""
