"""Builds the app's long-lived parts from settings: Redis, breakers, cache, router, token codec."""

from __future__ import annotations

from flask import Flask
from redis import Redis

from app.cache import CHANGED_PREFIX, Cache, CachePolicy
from app.config import Settings
from app.db.consistency import TokenCodec
from app.db.engines import make_monitor_engines, make_nodes
from app.db.replicas import LagPolicy, ReplicaMonitor
from app.db.routing import Router
from app.near_cache import NearCache
from app.resilience.breaker import BreakerPolicy, CircuitBreaker
from app.resilience.bulkhead import Bulkhead


def breaker_policy(settings: Settings, slow_call_s: float) -> BreakerPolicy:
    """The breaker policy from settings, with the slow-call bound of one dependency."""
    return BreakerPolicy(
        window=settings.breaker_window,
        min_calls=settings.breaker_min_calls,
        failure_rate=settings.breaker_failure_rate,
        slow_call_s=slow_call_s,
        open_s=settings.breaker_open_s,
        half_open_probes=settings.breaker_half_open_probes,
    )


def make_redis(settings: Settings) -> Redis:
    """The Redis client, with short timeouts so a slow or dead Redis costs little."""
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_socket_timeout,
    )


def make_cache(settings: Settings, redis: Redis, breaker: CircuitBreaker) -> Cache:
    """The cache with its policy from settings, and its near cache (started) unless disabled."""
    policy = CachePolicy(
        ttl_s=settings.cache_ttl_s,
        ttl_jitter=settings.cache_ttl_jitter,
        negative_ttl_s=settings.cache_negative_ttl_s,
        stale_grace_s=settings.cache_stale_grace_s,
        tombstone_ttl_s=settings.cache_tombstone_ttl_s,
        lock_ttl_ms=settings.cache_lock_ttl_ms,
        lock_wait_ms=settings.cache_lock_wait_ms,
        xfetch_beta=settings.cache_xfetch_beta,
    )
    near = None
    if settings.near_cache_ttl_s > 0:
        near = NearCache(
            redis, CHANGED_PREFIX, settings.near_cache_ttl_s, settings.near_cache_max_entries
        )
        near.start()
    return Cache(redis, breaker, policy, near)


def make_router(settings: Settings, redis: Redis, breaker: CircuitBreaker) -> Router:
    """The database router, its replica monitor and the primary's read bulkhead."""
    lag = LagPolicy(
        eject_above_s=settings.replica_lag_eject_s,
        readmit_below_s=settings.replica_lag_readmit_s,
        readmit_after_s=settings.replica_readmit_after_s,
    )
    monitor = ReplicaMonitor(make_monitor_engines(settings), lag, settings.replica_poll_interval_s)
    monitor.start()  # app factories run in each worker after the fork, so threads survive
    bulkhead = Bulkhead(redis, breaker, settings.read_fallback_max, settings.read_fallback_lease_s)
    return Router(make_nodes(settings), monitor, bulkhead, settings.ryw_wait_s)


def init_app(app: Flask, settings: Settings) -> None:
    """Keep every long-lived part in app.extensions."""
    redis = make_redis(settings)
    redis_breaker = CircuitBreaker("redis", breaker_policy(settings, settings.redis_slow_call_s))
    app.extensions["redis"] = redis
    app.extensions["cache"] = make_cache(settings, redis, redis_breaker)
    app.extensions["db_router"] = make_router(settings, redis, redis_breaker)
    app.extensions["token_codec"] = TokenCodec(settings.app_secret_key.get_secret_value())
