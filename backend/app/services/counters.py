"""The first consumer of domain events: per-user counters (post_count, last_post_at), kept by
the queue's workers and shown with the user. Like every write, it runs as a unit of work and
declares the cache keys it changes (cache_keys.py)."""

from __future__ import annotations

from app.db.queries import counters
from app.messaging.events import POST_CREATED, USER_CREATED, USER_DELETED, Received
from app.services import cache_keys
from app.services.units import Call, Units, Write

# The events that change counters: any other (a user renamed) is acknowledged with no write, so
# it costs the primary no transaction (and its replicas nothing to apply).
COUNTED = frozenset({POST_CREATED, USER_CREATED, USER_DELETED})


def counts(event: Received) -> bool:
    """Whether EVENT changes any counter."""
    return event.type in COUNTED


def counted_user(event: Received) -> int | None:
    """The user whose counters EVENT changes, if any."""
    return int(event.data["user_id"]) if event.type == POST_CREATED else None


def apply_event(units: Units, event: Received) -> bool:
    """Apply EVENT to the counters once in effect: True when it changed them now, False when it
    had been applied before (a redelivery) or changes none."""

    def apply(unit: Write) -> bool:
        changed = counters.apply(unit.conn, event)
        if changed and (user_id := counted_user(event)) is not None:
            unit.touches(*cache_keys.after_counters_changed(user_id))
        return changed

    return units.write(Call(request_id=f"event:{event.id}"), apply)


def forget_applied(units: Units, older_than_s: float) -> int:
    """Forget the ids of events applied more than OLDER_THAN_S ago (the stream's retention: no
    older event can be delivered again); how many went."""
    return units.write(Call(), lambda unit: counters.forget_applied(unit.conn, older_than_s))
