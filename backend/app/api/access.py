"""Who is calling, and may they: API keys (401 / 403) and per-key rate limits (429).

Runs before every /api request. A request may carry ``X-API-Key``; writes must. A key's tier
(``critical`` or ``standard``) selects its rate limit, checked in Redis (one round trip). Requests
without a key are the ``anonymous`` tier: nginx limits them per client address, for free, before
they reach Python (nginx/nginx.conf.template), so anonymous cached reads pay no extra round trip.

Keys are looked up on the primary (a key created a moment ago is there already), on a replica
when the primary is down, and remembered by each worker for API_KEY_CACHE_TTL_S, which is
therefore how long a revoked key may still work.
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import Flask, Response, current_app, g, request

from app import metrics
from app.api.data import retrier, router
from app.api.problems import Problem
from app.db.routing import PRIMARY
from app.db.sql import fetch_one
from app.resilience.ratelimit import Decision, RateLimiter
from app.services import api_keys

HEADER = "X-API-Key"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CHALLENGE = {"WWW-Authenticate": f'ApiKey header="{HEADER}"'}


class KeyCache:
    """Stored key rows (or their absence) by key id, each kept for TTL_S in this worker."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        """A small dict with expiry; cleared when full (it is only a cache)."""
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._rows: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def get(self, key_id: str) -> dict[str, Any] | None:
        """The row of KEY_ID, from memory when fresh, else from the database."""
        now = time.monotonic()
        hit = self._rows.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = load_row(key_id)
        if len(self._rows) >= self.max_entries:
            self._rows.clear()
        self._rows[key_id] = (now + self.ttl_s, row)
        return row


def load_row(key_id: str) -> dict[str, Any] | None:
    """KEY_ID's stored row: from the primary, or from a replica while the primary is down."""

    def once() -> dict[str, Any] | None:
        with router().reader(prefer=PRIMARY) as uow:
            return fetch_one(uow.conn, api_keys.LOOKUP, (key_id,))

    return retrier().run(once, kind="key_lookup", write=False)


def identify() -> api_keys.Client | None:
    """The client behind the request's key; None without a key; 401 / 403 for a bad one."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    keys: KeyCache = current_app.extensions["api_keys"]
    try:
        key_id, secret = api_keys.split_key(key)
        return api_keys.verify(keys.get(key_id), secret)
    except api_keys.InvalidKey as error:
        metrics.AUTH_FAILURES.labels(str(error)).inc()
        raise Problem(401, f"The {HEADER} is not a valid API key.", headers=CHALLENGE) from error
    except api_keys.RevokedKey as error:
        metrics.AUTH_FAILURES.labels("revoked").inc()
        raise Problem(403, f"API key {error} has been revoked.") from error


def limit_headers(decision: Decision, tier: str) -> dict[str, str]:
    """RateLimit-* headers (IETF httpapi draft) describing the key's bucket after this request."""
    rate = decision.rate
    headers = {
        "RateLimit-Policy": f'"{tier}";q={rate.burst};w={math.ceil(rate.burst / rate.per_s)}',
        "RateLimit-Limit": str(rate.burst),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_s)),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after_s)))
    return headers


def enforce(client: api_keys.Client) -> None:
    """Spend one request of CLIENT's rate limit: 429 over it, 503 when the limiter is down."""
    limiter: RateLimiter = current_app.extensions["rate_limiter"]
    decision = limiter.check(client.key_id, client.tier)
    g.rate_limit_headers = headers = limit_headers(decision, client.tier)
    if decision.limiter_down:
        metrics.RATE_LIMITED.labels(client.tier, "limiter_down").inc()
        detail = f"Rate limits of the {client.tier} tier cannot be checked now; retry shortly."
        raise Problem(503, detail, headers={"Retry-After": headers["Retry-After"]})
    if not decision.allowed:
        metrics.RATE_LIMITED.labels(client.tier, "over_limit").inc()
        detail = f"Rate limit of the {client.tier} tier exceeded ({decision.rate.per_s:g}/s)."
        raise Problem(429, detail, headers=headers)


def init_app(app: Flask, writes_need_key: bool, limits_enabled: bool) -> None:
    """Check the key and the rate limit of every /api request."""

    @app.before_request
    def admit() -> None:
        if not request.path.startswith("/api/") or request.routing_exception is not None:
            return  # a 404 or 405 says more than a 401 would
        g.client = client = identify()
        if client is None:
            if writes_need_key and request.method in WRITES:
                metrics.AUTH_FAILURES.labels("missing").inc()
                raise Problem(401, f"Writes need an API key in {HEADER}.", headers=CHALLENGE)
            return
        if limits_enabled:
            enforce(client)

    @app.after_request
    def stamp_limits(response: Response) -> Response:
        response.headers.update(g.get("rate_limit_headers", {}))
        return response
