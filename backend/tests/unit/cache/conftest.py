"""Fakes for the cache's unit tests: an in-memory Redis that runs the Lua scripts (fakeredis)."""

from __future__ import annotations

import fakeredis
import pytest

from app.resilience.breaker import BreakerPolicy, CircuitBreaker


@pytest.fixture
def redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def breaker() -> CircuitBreaker:
    return CircuitBreaker("redis", BreakerPolicy())
