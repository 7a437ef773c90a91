"""Prometheus metrics of a push process (GET /metrics on its own port, never through nginx).

Natively the process's own registry; in a container the image sets PROMETHEUS_MULTIPROC_DIR, and
the values go through its files as the API's do (app.metrics.exposition reads either way)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STREAMS = Gauge("push_streams", "Open streams", multiprocess_mode="livesum")
OPENED = Counter("push_streams_opened_total", "Streams opened")
REFUSED = Counter("push_streams_refused_total", "Streams refused", ["reason"])
DROPPED = Counter("push_slow_clients_dropped_total", "Clients dropped: their buffer was full")
SENT = Counter("push_events_sent_total", "Post events written to clients")
REPLAYED = Counter("push_replayed_total", "Posts replayed to resuming clients", ["source"])
BAD_EVENTS = Counter("push_bad_events_total", "Stream messages that were not a post")
FEED_RESTARTS = Counter("push_feed_restarts_total", "Ordered consumers made again by the watchdog")
FEED_SEQUENCE = Gauge(
    "push_feed_sequence", "Stream sequence of the last post read", multiprocess_mode="livemax"
)
FEED_DELAY = Histogram(
    "push_feed_delay_seconds",
    "From a post's commit to its arrival in this process",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
