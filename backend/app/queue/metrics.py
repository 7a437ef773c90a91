"""Prometheus metrics of the relay and the workers, served by each process on METRICS_PORT
(127.0.0.1 natively; the launcher gives each its own port, .env.example)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from app.metrics import ensure_multiprocess_dir

ensure_multiprocess_dir()  # a labelless metric below opens its file at once (containers)

OUTBOX_DEPTH = Gauge("outbox_depth", "Outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished outbox row"
)
PUBLISHED = Counter("relay_published_total", "Events the broker acknowledged", ["duplicate"])
PUBLISH_LATENCY = Histogram(
    "relay_publish_seconds",
    "From the first publish of a batch to the broker's last ack of it",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
PUBLISH_FAILURES = Counter("relay_publish_failures_total", "Batches the broker did not ack")
LEASE_HELD = Gauge("relay_lease_held", "1 while this relay holds the outbox lease")
APPLIED = Counter("worker_events_total", "Events handled by a worker", ["outcome"])
APPLY_AGE = Histogram(
    "worker_event_age_seconds",
    "From a write (its event's occurred_at) to a worker's commit of what it counts",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
)
DEAD_LETTERED = Counter("worker_dead_lettered_total", "Events sent to the dead-letter stream")
CONSUMER_PENDING = Gauge("consumer_pending", "Events in the stream not yet delivered (lag)")
CONSUMER_ACK_PENDING = Gauge("consumer_ack_pending", "Events delivered and not yet acknowledged")


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on PORT (0: not at all)."""
    if port:
        start_http_server(port, addr=host)
