"""The application layer as the HTTP layer sees it: one object, built once per worker (wiring)."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.resilience.breaker import CircuitBreaker
from app.resilience.ratelimit import RateLimiter
from app.services.api_keys import Keys
from app.services.consistency import TokenCodec
from app.services.health import Health
from app.services.units import Units


@dataclass(frozen=True)
class Services:
    """What routes call: units of work, API keys, tokens, rate limits, health."""

    settings: Settings
    units: Units
    keys: Keys
    codec: TokenCodec
    limiter: RateLimiter
    health: Health
    breakers: dict[str, CircuitBreaker]
