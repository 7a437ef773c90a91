"""What the edge tests share: anonymous reads of the test stack, an edge answer, the purger's
switch, and the freshness harness (loadtest/freshness.py) on the test stack."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from loadtest import freshness as harness
from loadtest.freshness import BOUND_S, MIN_USES, Freshness, Load, measured
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
