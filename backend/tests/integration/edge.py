"""What the edge tests share: anonymous reads of the test stack, an edge answer, the purger's
switch, and the freshness harness (loadtest/freshness.py) on the test stack."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator

import pytest
import requests

from loadtest import freshness as harness
from loadtest.freshness import BOUND_S, MIN_USES, Freshness, Load
from stack.nginx import edge_serving
from stack.settings import Stack
from stack.waiting import until
from tests.integration.conftest import launcher
from tests.integration.helpers import Api

__all__ = [
    "BOUND_S",
    "MIN_USES",
    "admit",
    "anonymous",
    "edge_answer",
    "edge_on",
    "freshness",
    "measured",
    "serving",
]


@pytest.fixture(scope="module")
def edge_on(stack: Stack) -> Iterator[None]:
    """The test stack runs with the edge cache off (conftest.py); `make up` turns it on for a
    module the way a user's `make up` does (nginx takes the new config with a HUP), and off
    again after."""
    launcher("up", {"EDGE_CACHE": "on"})
    serving(stack)
    try:
        yield
    finally:
        launcher("up", {"EDGE_CACHE": "off"})


def anonymous(stack: Stack, path: str, **headers: str) -> requests.Response:
    """A read from a client with no key, no token and no cookie."""
    return harness.anonymous(stack.base_url, path, **headers)


def admit(stack: Stack, path: str) -> list[requests.Response]:
    """The MIN_USES anonymous reads after which the edge keeps PATH's answer (all from the API)."""
    return harness.admit(stack.base_url, path)


def edge_answer(stack: Stack, path: str, **headers: str) -> requests.Response:
    """The first anonymous read of PATH that the edge answers. A key just written may see its
    copy purged once or twice more (the write's purge, and its repeat a few seconds later):
    each costs one refill, then the edge answers again."""

    def edge() -> requests.Response | None:
        response = anonymous(stack, path, **headers)
        return response if response.headers.get("X-Cache") == "EDGE" else None

    found = until(edge, 10, f"an edge answer for {path}", interval=0.01)
    assert found is not None
    return found


def serving(stack: Stack, timeout: float = 60) -> None:
    """Wait until the edge purger follows the stream (its switch file is there)."""
    until(lambda: edge_serving(stack), timeout, "the edge purger following the stream")


def freshness(
    stack: Stack,
    api: Api,
    writes: int,
    *,
    posts: bool = False,
    pace_s: float = 0.02,
    during: Callable[[], None] | None = None,
) -> Freshness:
    """The harness on 4 new hot users of the test stack, written with API's key."""
    writer = requests.Session()
    writer.headers["X-API-Key"] = api.api_key or ""
    with writer:
        load = Load(stack.base_url, writer, harness.hot_users(writer, stack.base_url, 4))
        return measured(
            stack,
            lambda: harness.freshness(load, writes, posts=posts, pace_s=pace_s, during=during),
        )


def measured(stack: Stack, run: Callable[[], Freshness]) -> Freshness:
    """RUN's result, with where the time went meanwhile (its notes)."""
    before = timings(stack)
    result = run()
    after = timings(stack)
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    return dataclasses.replace(result, notes=where_time_went(spent))


def where_time_went(spent: dict[str, float]) -> str:
    """SPENT (TIMED counts during a run) in a line: how many of the relays' publishes, the
    workers' commits and the purges came within 0.1 s and 0.5 s (of their write; a publish, of
    its start), of all; the publishes that failed; what told the purger of each derived purge."""

    def within(prefix: str) -> str:
        counts = [spent.get(prefix + 'le="' + le + '"}', 0.0) for le in ("0.1", "0.5", "+Inf")]
        return "/".join(f"{count:g}" for count in counts)

    told = {
        name.split('"')[1]: count
        for name, count in spent.items()
        if name.startswith("edge_derived_purges_total") and count
    }
    via = ", ".join(f"{name} {count:g}" for name, count in sorted(told.items())) or "none"
    publishes = within("relay_publish_seconds_bucket{")
    failed = spent.get("relay_publish_failures_total", 0.0)
    commits = within("worker_event_age_seconds_bucket{")
    writes = within('edge_purge_lag_seconds_bucket{kind="write",')
    derived = within('edge_purge_lag_seconds_bucket{kind="derived",')
    return (
        f"within 0.1 s/0.5 s/all: relays' publishes {publishes} ({failed:g} failed), workers' "
        f"commits {commits}, write purges {writes}, derived purges {derived} ({via})"
    )


# The counts that say where a late purge's time went: the relays' publishes (how long the broker
# took to ack a batch, and batches it did not), the workers' commits of counters by the event's
# age, the purges by their lag, and what told the purger of each derived one (nudge or floor).
TIMED = re.compile(
    r'^(worker_event_age_seconds_bucket\{le="(?:0\.1|0\.5|\+Inf)"\}'
    r'|relay_publish_seconds_bucket\{le="(?:0\.1|0\.5|\+Inf)"\}'
    r"|relay_publish_failures_total"
    r"|edge_derived_purges_total\{[^}]*\}"
    r'|edge_purge_lag_seconds_bucket\{kind="\w+",le="(?:0\.1|0\.5|\+Inf)"\}) (\S+)$',
    re.MULTILINE,
)


def timings(stack: Stack) -> dict[str, float]:
    """The TIMED counts of the edge purger, the relays and the workers now (summed by name; one
    that does not answer is left out: a restarted process's counts start again, too)."""
    ports = [int(stack.env["EDGE_PURGER_METRICS_PORT"])]
    workers = stack.queue_metrics_ports().items()
    ports += [port for _, port in workers]
    found: dict[str, float] = {}
    for port in ports:
        try:  # what is told, not what is tested: a process restarting meanwhile is left out
            text = requests.get(f"http://{stack.host}:{port}/metrics", timeout=2).text
        except requests.RequestException:
            continue
        for name, value in TIMED.findall(text):
            found[name] = found.get(name, 0.0) + float(value)
    return found
