"""The relays' word on the outbox, for the edge purgers (docs/caching.md, "When the relays
cannot publish").

An edge purger follows the events stream, but an event reaches the stream only once a relay
has published it from the outbox: while the relays cannot (dead, frozen, cut from the broker or
the database, draining a backlog), a write's purge waits in the outbox where no purger sees it.
So the relay holding the lease says, after each look at the outbox, when it looked (its wall
clock) and how long the oldest event it found there had waited (0: none), on the core NATS
subject SUBJECT (no stream keeps it; only the relays' account may publish on it). Every event
committed before ``looked_at - oldest_wait_s`` was in the stream, or on its way there, so at any
later time no event has waited in the outbox longer than ``now - looked_at + oldest_wait_s``: the
bound a purger holds against EDGE_PURGE_MAX_LAG_S. A word that does not come lets the bound grow
by itself. The relay looks at least every OUTBOX_POLL_INTERVAL_S, idle or not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

SUBJECT = "outbox.status"


@dataclass(frozen=True)
class OutboxStatus:
    """One look at the outbox: when (seconds since the epoch), and its oldest event's wait."""

    looked_at: float
    oldest_wait_s: float

    def payload(self) -> bytes:
        return json.dumps(
            {"looked_at": round(self.looked_at, 6), "oldest_wait_s": round(self.oldest_wait_s, 6)}
        ).encode()

    def waited_s(self, now: float) -> float:
        """The longest any event may have waited in the outbox at NOW (a clock a little behind
        the relay's counts as no time since the look)."""
        return max(now - self.looked_at, 0.0) + self.oldest_wait_s


def parse(payload: bytes) -> OutboxStatus | None:
    """The status in PAYLOAD; None when it is not one."""
    try:
        document = json.loads(payload)
        looked_at, waited = float(document["looked_at"]), float(document["oldest_wait_s"])
    except (ValueError, KeyError, TypeError):
        return None
    if not (math.isfinite(looked_at) and math.isfinite(waited)) or waited < 0:
        return None
    return OutboxStatus(looked_at, waited)
