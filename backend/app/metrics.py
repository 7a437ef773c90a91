"""Prometheus metrics of the API, shared by all gunicorn workers of one replica.

With PROMETHEUS_MULTIPROC_DIR set (the launcher and compose set it), every worker writes its
counters to files in that dir and /metrics adds them up; without it (unit tests) the default
in-process registry is used.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)

CACHE_REQUESTS = Counter("cache_requests_total", "Cached reads by outcome", ["outcome"])
CACHE_LOADS = Counter("cache_loads_total", "Database loads behind cached reads", ["kind"])
DB_READS = Counter("db_reads_total", "Read units of work by the node that served them", ["node"])
INVALIDATION_FAILURES = Counter(
    "cache_invalidation_failures_total", "Writes whose cache invalidation could not reach Redis"
)


def exposition() -> tuple[bytes, str]:
    """The text exposition format of every metric of this API replica."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
