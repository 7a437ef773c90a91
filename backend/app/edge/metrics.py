"""Prometheus metrics of an edge purger, served on METRICS_PORT."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from app.metrics import ensure_multiprocess_dir

ensure_multiprocess_dir()  # a labelless metric below opens its file at once (containers)

PURGES = Counter(
    "edge_purges_total", "Purge requests sent to nginx", ["outcome"]
)  # outcome: dropped (a copy was there), absent, repeat, failed
PURGE_LAG = Histogram(
    "edge_purge_lag_seconds",
    "From a write (the event's occurred_at) to the first purge of its copies: what the write "
    "changed (kind=write), or what a worker derived from it (kind=derived)",
    ["kind"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
)
DERIVED = Counter(
    "edge_derived_purges_total",
    "Purges of what a worker derived from an event, by what told the purger it was applied",
    ["via"],
)  # via: nudge (the worker said so), early (said before the event came), floor (ack floor)
POSITION = Gauge("edge_purger_position", "Stream sequence of the last event purged")
FOLLOWING = Gauge(
    "edge_purger_following", "1 while the purger follows the stream and nginx serves its copies"
)
PENDING = Gauge("edge_purger_pending", "Events in the stream not yet delivered to the purger")
OUTBOX_WAIT = Gauge(
    "edge_outbox_wait_seconds",
    "The longest an event may have waited in the outbox, by the relays' last word (-1: none "
    "heard yet); past EDGE_PURGE_MAX_LAG_S the edge serves no copy",
)
