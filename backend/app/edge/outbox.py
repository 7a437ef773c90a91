"""What an edge purger last heard from the relays about the outbox (messaging/outbox_status.py):
how long an event may have waited there by now, which no purge of this purger can be faster
than. Past EDGE_PURGE_MAX_LAG_S the edge stops serving copies (purger.py's check)."""

from __future__ import annotations

import math
import time

from nats.aio.msg import Msg

from app.edge import metrics
from app.messaging import outbox_status
from app.messaging.outbox_status import OutboxStatus


class OutboxWatch:
    """The newest look at the outbox a relay told of."""

    def __init__(self) -> None:
        self.last: OutboxStatus | None = None

    async def heard(self, message: Msg) -> None:
        """A relay's word (subscribed on outbox_status.SUBJECT); an older look than the one
        kept (a word delayed, two relays after a pause) changes nothing."""
        status = outbox_status.parse(message.data)
        if status is not None and (self.last is None or status.looked_at >= self.last.looked_at):
            self.last = status

    def waited_s(self) -> float:
        """The longest an event may have waited in the outbox by now (inf: no word yet)."""
        waited = math.inf if self.last is None else self.last.waited_s(time.time())
        metrics.OUTBOX_WAIT.set(waited if math.isfinite(waited) else -1)
        return waited
