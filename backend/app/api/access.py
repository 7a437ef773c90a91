"""Who is calling, and may they: API keys (401 / 403) and per-key rate limits (429).

Runs before every /api request. A request may carry ``X-API-Key``; writes must. A key's tier
(``critical`` or ``standard``) selects its rate limit, checked in Redis (one round trip). Requests
without a key are the ``anonymous`` tier: nginx limits them per client address, for free, before
they reach Python (nginx/nginx.conf.template), so anonymous cached reads pay no extra round trip.
Which client a key names is app.services.api_keys' business.
"""

from __future__ import annotations

import math

from flask import Flask, Response, g, request

from app import metrics
from app.api.context import services
from app.api.problems import CHALLENGE, KEY_HEADER, Problem
from app.errors import InvalidKey, MalformedKey, RevokedKey
from app.resilience.ratelimit import Decision
from app.services.api_keys import Client

HEADER = KEY_HEADER
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The rate-limit tier of the addresses that send keys the API refuses.
REFUSED = "refused"


def identify() -> Client | None:
    """The client behind the request's key; None without a key; 401 / 403 for a bad one."""
    key = request.headers.get(HEADER)
    return None if key is None else services().keys.identify(key)


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


def limit_refused_key() -> None:
    """A key the API refused (unknown, revoked) spends one request of its address's bucket,
    at the anonymous rate: made-up keys cost Python a lookup each, never an unlimited flood."""
    decision = services().limiter.check(f"refused:{request.remote_addr}", REFUSED)
    if not decision.allowed and not decision.limiter_down:
        metrics.RATE_LIMITED.labels(REFUSED, "over_limit").inc()
        detail = "Too many requests with a refused API key from this address; slow down."
        raise Problem(429, detail, headers=limit_headers(decision, REFUSED))


def enforce(client: Client) -> None:
    """Spend one request of CLIENT's rate limit: 429 over it, 503 when the limiter is down."""
    decision = services().limiter.check(client.key_id, client.tier)
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
        try:
            g.client = client = identify()
        except MalformedKey:
            raise  # nginx has limited it already, as a request with no key
        except (InvalidKey, RevokedKey):
            if limits_enabled:
                limit_refused_key()
            raise
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
