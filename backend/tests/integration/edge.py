"""What the edge tests share: anonymous reads, the admission of a key, and the freshness harness
(a writer changes hot users while anonymous readers poll them through nginx)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from stack.render import edge_following_file
from stack.settings import Stack
from stack.waiting import until
from tests.integration.helpers import Api

MIN_USES = 2  # EDGE_CACHE_MIN_USES as .env.example has it: stored from a key's 2nd request
# The freshness bound (issue: p99 of write's 2xx -> last old version seen).
BOUND_S = 0.1


def anonymous(stack: Stack, path: str, **headers: str) -> requests.Response:
    """A read from a client with no key, no token and no cookie."""
    return requests.get(f"{stack.base_url}{path}", headers=headers, timeout=10)


def admit(stack: Stack, path: str) -> list[requests.Response]:
    """The MIN_USES anonymous reads after which the edge keeps PATH's answer (all from the API)."""
    return [anonymous(stack, path, **{"X-Request-ID": f"admit-{n}"}) for n in range(MIN_USES)]


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
    until(edge_following_file(stack).exists, timeout, "the edge purger following the stream")


def hot_users(api: Api, count: int) -> list[int]:
    """COUNT new users (their ids), each named v0."""
    return [api.create_user("v0", "Hot")["id"] for _ in range(count)]


@dataclass
class Freshness:
    """What the readers saw: per write, how long after its 2xx an older version was still read."""

    lags: list[float]
    reads: int
    edge_reads: int
    final_fresh: bool

    @property
    def p99(self) -> float:
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

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
        )


def version_of(body: dict[str, Any], posts: bool) -> int:
    """The version a read shows: the name's number, or the post count."""
    return int(body["post_count"]) if posts else int(body["name"][1:])


def freshness(
    stack: Stack,
    api: Api,
    users: list[int],
    writes: int,
    *,
    posts: bool = False,
    readers: int = 4,
    pace_s: float = 0.02,
    during: Callable[[], None] | None = None,
) -> Freshness:
    """WRITES writes spread over USERS (renames v1, v2, ...; or, with POSTS, new posts) while
    READERS poll them anonymously; DURING runs in its own thread meanwhile (a fault)."""
    for user in users:  # every user's copy at the edge before the first write
        admit(stack, f"/api/users/{user}")
    acked: list[tuple[int, int, float]] = []  # (user, version, 2xx time)
    seen: list[tuple[int, int, float, str]] = []  # (user, version, read start, X-Cache)
    done = threading.Event()

    def writer() -> None:
        counts = dict.fromkeys(users, 0)
        for n in range(writes):
            user = users[n % len(users)]
            counts[user] += 1
            if posts:
                response = api.post(f"/api/users/{user}/posts", json={"body": f"p{n}"})
            else:
                response = api.patch(f"/api/users/{user}", json={"name": f"v{counts[user]}"})
            assert response.status_code in (200, 201), response.text
            acked.append((user, counts[user], time.monotonic()))
            time.sleep(pace_s)

    def reader(offset: int) -> list[tuple[int, int, float, str]]:
        found = []
        with requests.Session() as session:
            n = offset
            while not done.is_set():
                user = users[n % len(users)]
                n += 1
                started = time.monotonic()
                response = session.get(f"{stack.base_url}/api/users/{user}", timeout=10)
                assert response.status_code == 200, response.text
                found.append(
                    (user, version_of(response.json(), posts), started, response.headers["X-Cache"])
                )
        return found

    with ThreadPoolExecutor(readers + 2) as pool:
        polling = [pool.submit(reader, r) for r in range(readers)]
        fault = pool.submit(during) if during else None
        try:
            pool.submit(writer).result()
            if fault:
                fault.result()
        finally:
            time.sleep(0.5)
            done.set()
            for future in polling:
                seen += future.result()
    return measure(stack, users, acked, seen, posts)


def measure(
    stack: Stack,
    users: list[int],
    acked: list[tuple[int, int, float]],
    seen: list[tuple[int, int, float, str]],
    posts: bool,
) -> Freshness:
    """Per write: the last read that began after its 2xx yet showed an older version."""
    lags = []
    for user, version, at in acked:
        late = [start - at for u, v, start, _ in seen if u == user and v < version and start > at]
        lags.append(max(late, default=0.0))
    finals = {user: max((v for u, v, _ in acked if u == user), default=0) for user in users}

    def settled() -> bool:
        answers = [anonymous(stack, f"/api/users/{user}") for user in users]
        return all(
            version_of(a.json(), posts) == finals[u] for a, u in zip(answers, users, strict=True)
        )

    edge_reads = sum(1 for *_, cache in seen if cache == "EDGE")
    return Freshness(lags, len(seen), edge_reads, settled())
