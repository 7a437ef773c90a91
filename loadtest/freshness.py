"""How fresh the edge is: a writer changes hot users while anonymous readers poll them through
nginx; for each write, the last read that began after its 2xx yet showed an older version.

Shared by the integration tests (backend/tests/integration/test_edge_*.py) and `make chaos`'s
edge rows (loadtest/chaos/edge.py), which both print where a run's time went (measured()).
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from loadtest.harness.stats import percentile
from stack.settings import Stack
from stack.waiting import until

MIN_USES = 2  # EDGE_CACHE_MIN_USES as .env.example has it: stored from a key's 2nd request
# The freshness bound of the steady state (p99 of a write's 2xx -> the last old version read).
BOUND_S = 0.1
# Writes of the same traffic before the measured ones (the steady state is what is measured).
WARMUP_WRITES = 20
# How long a final answer that was old is watched for the new one (what the failure says).
FINAL_WATCH_S = 8.0


def anonymous(base_url: str, path: str, **headers: str) -> requests.Response:
    """A read from a client with no key, no token and no cookie."""
    return requests.get(f"{base_url}{path}", headers=headers, timeout=10)


def admit(base_url: str, path: str) -> list[requests.Response]:
    """The MIN_USES anonymous reads after which the edge keeps PATH's answer (all from the API)."""
    return [anonymous(base_url, path, **{"X-Request-ID": f"admit-{n}"}) for n in range(MIN_USES)]


def hot_users(writer: requests.Session, base_url: str, count: int) -> list[int]:
    """COUNT new users (their ids), each named v0; WRITER sends the API key."""
    ids = []
    for _ in range(count):
        response = writer.post(
            f"{base_url}/api/users", json={"name": "v0", "second_name": "Hot"}, timeout=10
        )
        assert response.status_code == 201, response.text
        ids.append(int(response.json()["id"]))
    return ids


@dataclass
class Freshness:
    """What the readers saw: per write, how long after its 2xx an older version was still read."""

    lags: list[float]
    reads: int
    edge_reads: int
    final_fresh: bool
    # For each final answer that was old: the user, the version shown and the one written, who
    # answered (X-Cache) and how long after the final look a fresh version was read (or never,
    # within FINAL_WATCH_S): a copy the edge kept, or a purge that came late.
    stale_finals: tuple[str, ...] = ()
    # Where the time went meanwhile, when the caller measured it (the test stack's metrics).
    notes: str = ""

    @property
    def p99(self) -> float:
        return percentile(self.lags, 0.99)

    @property
    def worst(self) -> float:
        return max(self.lags, default=0.0)

    @property
    def edge_share(self) -> float:
        return self.edge_reads / max(self.reads, 1)

    @property
    def summary(self) -> str:
        worst = sorted(self.lags)[-5:]
        return (
            f"{len(self.lags)} writes, {self.reads} reads ({self.edge_share:.0%} EDGE); "
            f"2xx -> last old version seen: p99 {self.p99 * 1000:.0f} ms, worst "
            f"{[round(w * 1000) for w in worst]} ms; final versions fresh: {self.final_fresh}"
            + "".join(f"; {stale}" for stale in self.stale_finals)
            + (f"; {self.notes}" if self.notes else "")
        )


def version_of(body: dict[str, Any], posts: bool) -> int:
    """The version a read shows: the name's number, or the post count."""
    return int(body["post_count"]) if posts else int(body["name"][1:])


@dataclass(frozen=True)
class Load:
    """Who writes and reads: nginx's URL, a session that sends the API key, the hot users."""

    base_url: str
    writer: requests.Session
    users: list[int]


def freshness(
    load: Load,
    writes: int,
    *,
    posts: bool = False,
    readers: int = 4,
    pace_s: float = 0.02,
    during: Callable[[], None] | None = None,
    warmup: int = WARMUP_WRITES,
) -> Freshness:
    """WRITES writes spread over the hot users (renames v1, v2, ...; or, with POSTS, new posts)
    while READERS poll them anonymously; DURING runs in its own thread meanwhile (a fault).
    The first WARMUP writes are the same traffic, not measured: the steady state is measured,
    not the first uses of connections and code paths of processes `make up` just restarted."""
    for user in load.users:  # every user's copy at the edge before the first write
        admit(load.base_url, f"/api/users/{user}")
    acked: list[tuple[int, int, float]] = []  # (user, version, 2xx time)
    seen: list[tuple[int, int, float, str]] = []  # (user, version, read start, X-Cache)
    done = threading.Event()

    def write() -> None:
        counts = dict.fromkeys(load.users, 0)
        for n in range(-warmup, writes):
            user = load.users[n % len(load.users)]
            counts[user] += 1
            url = f"{load.base_url}/api/users/{user}"
            if posts:
                response = load.writer.post(f"{url}/posts", json={"body": f"p{n}"}, timeout=10)
            else:
                response = load.writer.patch(url, json={"name": f"v{counts[user]}"}, timeout=10)
            assert response.status_code in (200, 201), response.text
            if n >= 0:
                acked.append((user, counts[user], time.monotonic()))
            time.sleep(pace_s)

    def read(offset: int) -> list[tuple[int, int, float, str]]:
        found = []
        with requests.Session() as session:
            n = offset
            while not done.is_set():
                user = load.users[n % len(load.users)]
                n += 1
                started = time.monotonic()
                response = session.get(f"{load.base_url}/api/users/{user}", timeout=10)
                assert response.status_code == 200, response.text
                version = version_of(response.json(), posts)
                found.append((user, version, started, response.headers["X-Cache"]))
        return found

    with ThreadPoolExecutor(readers + 2) as pool:
        polling = [pool.submit(read, r) for r in range(readers)]
        writing = pool.submit(write)
        # The fault starts with the measured writes, after the warm-up.
        until(lambda: bool(acked) or writing.done(), 120, "the warm-up writes", interval=0.01)
        fault = pool.submit(during) if during else None
        try:
            writing.result()
            if fault:
                fault.result()
        finally:
            time.sleep(0.5)
            done.set()
            for future in polling:
                seen += future.result()
    return measure(load, acked, seen, posts)


def measure(
    load: Load,
    acked: list[tuple[int, int, float]],
    seen: list[tuple[int, int, float, str]],
    posts: bool,
) -> Freshness:
    """Per write: the last read that began after its 2xx yet showed an older version."""
    lags = []
    for user, version, at in acked:
        late = [start - at for u, v, start, _ in seen if u == user and v < version and start > at]
        lags.append(max(late, default=0.0))
    finals = {user: max((v for u, v, _ in acked if u == user), default=0) for user in load.users}
    answers = {user: anonymous(load.base_url, f"/api/users/{user}") for user in load.users}
    stale = {u: a for u, a in answers.items() if version_of(a.json(), posts) != finals[u]}
    edge_reads = sum(1 for *_, cache in seen if cache == "EDGE")
    described = tuple(
        describe_stale(load.base_url, u, a, finals[u], posts) for u, a in stale.items()
    )
    return Freshness(lags, len(seen), edge_reads, not stale, described)


def describe_stale(
    base_url: str, user: int, answer: requests.Response, final: int, posts: bool
) -> str:
    """What an old final answer was, and when (if within FINAL_WATCH_S) the new one came."""
    looked = time.monotonic()
    shown = version_of(answer.json(), posts)
    shown_as = f"user {user} showed {shown} of {final} ({answer.headers.get('X-Cache')})"

    def fresh() -> float | None:
        again = anonymous(base_url, f"/api/users/{user}")
        if version_of(again.json(), posts) != final:
            return None
        return time.monotonic() - looked

    after = until(fresh, FINAL_WATCH_S, "", interval=0.05, required=False)
    if after:
        return f"{shown_as}, fresh {after * 1000:.0f} ms later"
    return f"{shown_as}, still old {FINAL_WATCH_S:g} s later"


def measured(stack: Stack, run: Callable[[], Freshness]) -> Freshness:
    """RUN's result, with where the time went meanwhile (its notes)."""
    before = timings(stack)
    result = run()
    return dataclasses.replace(result, notes=where_time_went(increase(before, timings(stack))))


def increase(
    before: dict[tuple[int, str], float], after: dict[tuple[int, str], float]
) -> dict[str, float]:
    """What each count grew by between BEFORE and AFTER (per process: its metrics port), summed
    by name. A count that went down belongs to a process that restarted meanwhile (a killed
    purger): it counts from zero, as Prometheus' increase() does, instead of going negative."""
    spent: dict[str, float] = {}
    for (port, name), now in after.items():
        then = before.get((port, name), 0.0)
        spent[name] = spent.get(name, 0.0) + (now - then if now >= then else now)
    return spent


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


def timings(stack: Stack) -> dict[tuple[int, str], float]:
    """The TIMED counts of the edge purger, the relays and the workers now, by metrics port and
    name (one that does not answer is left out)."""
    ports = [int(stack.env["EDGE_PURGER_METRICS_PORT"]), *stack.queue_metrics_ports().values()]
    found: dict[tuple[int, str], float] = {}
    for port in ports:
        try:  # what is told, not what is tested: a process restarting meanwhile is left out
            text = requests.get(f"http://{stack.host}:{port}/metrics", timeout=2).text
        except requests.RequestException:
            continue
        for name, value in TIMED.findall(text):
            found[port, name] = found.get((port, name), 0.0) + float(value)
    return found
