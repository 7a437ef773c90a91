"""Builds the app's long-lived parts from settings: Redis, breakers, cache, router, limits, and
the application layer over them (app.services.container.Services)."""

from __future__ import annotations

from typing import Literal

from redis import Redis

from app.cache import Cache, CachePolicy
from app.cache.entries import CHANGED_PREFIX
from app.cache.near import NearCache
from app.config import Settings
from app.db import errors as db_errors
from app.db.engines import Engines, replica_members
from app.db.lag import LagPolicy
from app.db.monitor import ReplicaMonitor
from app.db.routing import PRIMARY, Nodes, Router
from app.db.topology import Topology, replica_name
from app.messaging.status import BrokerStatus
from app.resilience.breaker import BreakerPolicy, CircuitBreaker
from app.resilience.bulkhead import Bulkhead
from app.resilience.overrides import OverrideWatcher
from app.resilience.ratelimit import Rate, RateLimiter
from app.resilience.retry import Retrier, RetryPolicy
from app.services.api_keys import Keys
from app.services.consistency import TokenCodec
from app.services.container import Services
from app.services.health import Health
from app.services.units import Units


def breaker_policy(settings: Settings, slow_call_s: float) -> BreakerPolicy:
    """The breaker policy from settings, with the slow-call bound of one dependency."""
    return BreakerPolicy(
        window=settings.breaker_window,
        window_s=settings.breaker_window_s,
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
        password=settings.redis_password.get_secret_value() or None,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_socket_timeout,
    )


def make_cache(
    settings: Settings, redis: Redis, breaker: CircuitBreaker, *, near_cache: bool = True
) -> Cache:
    """The cache with its policy from settings, and its near cache (started) unless disabled
    (NEAR_CACHE_TTL_S 0, or NEAR_CACHE False: a process that only writes needs none)."""
    policy = CachePolicy(
        ttl_s=settings.cache_ttl_s,
        ttl_jitter=settings.cache_ttl_jitter,
        negative_ttl_s=settings.cache_negative_ttl_s,
        stale_grace_s=settings.cache_stale_grace_s,
        tombstone_ttl_s=settings.cache_tombstone_ttl_s,
        lock_ttl_ms=settings.cache_lock_ttl_ms,
        lock_wait_ms=settings.cache_lock_wait_ms,
        xfetch_beta=settings.cache_xfetch_beta,
        invalidation_retry_s=settings.cache_invalidation_retry_s,
        admission_window_s=settings.cache_admission_window_s,
    )
    near = None
    if near_cache and settings.near_cache_ttl_s > 0:
        # Its markers also vouch for keys no write touched lately, which reads then load
        # without asking Redis (CACHE_DIRECT_LOADS, app/cache/reads.py).
        watch_s = settings.cache_tombstone_ttl_s if settings.cache_direct_loads else 0.0
        near = NearCache(
            redis,
            CHANGED_PREFIX,
            settings.near_cache_ttl_s,
            settings.near_cache_max_entries,
            watch_s=watch_s,
        )
        near.start()
    cache = Cache(redis, breaker, policy, near)
    cache.start_retrying()  # app factories run in each worker after the fork, so threads survive
    return cache


def db_breakers(settings: Settings) -> dict[str, CircuitBreaker]:
    """A breaker per database role: the primary, and each member serving reads (replica-0 is
    the configured primary, once a failover made it a replica)."""
    policy = breaker_policy(settings, settings.db_slow_call_s)
    names = [PRIMARY, *(replica_name(i) for i in range(len(settings.members())))]
    return {name: CircuitBreaker(name, policy) for name in names}


def make_router(
    settings: Settings,
    redis: Redis,
    redis_breaker: CircuitBreaker,
    breakers: dict[str, CircuitBreaker],
    write_deadline_s: float | None = None,
) -> Router:
    """The database router, its replica monitor, the primary's read bulkhead, and the topology
    that moves the router to another primary after a failover. WRITE_DEADLINE_S: the deadline of
    this process's writes (Engines)."""
    lag = LagPolicy(
        eject_above_s=settings.replica_lag_eject_s,
        readmit_below_s=settings.replica_lag_readmit_s,
        readmit_after_s=settings.replica_readmit_after_s,
    )
    engines = Engines(settings, write_deadline_s)
    topology: Topology | None = None

    def promoted(name: str) -> None:
        if topology is not None:
            topology.wake()

    def view_of(primary: str) -> tuple[Nodes, ReplicaMonitor]:
        members = replica_members(settings, primary)
        monitor = ReplicaMonitor(
            {name: engines.monitor(address) for name, address in members.items()},
            lag,
            settings.replica_poll_interval_s,
            primary=engines.second_opinion(primary),
            on_writable=promoted,
        )
        monitor.start()  # app factories run in each worker after the fork, so threads survive
        return engines.nodes(primary), monitor

    bulkhead = Bulkhead(
        redis, redis_breaker, settings.read_fallback_max, settings.read_fallback_lease_s
    )
    router = Router(
        *view_of(settings.db_primary),
        bulkhead,
        breakers,
        settings.ryw_wait_s,
        primary=settings.db_primary,
        topology_wait_s=settings.topology_wait_s,
    )
    topology = Topology(
        {address: engines.probe(address) for address in settings.members()},
        settings.db_primary,
        lambda address: router.switch(address, *view_of(address)),
        settings.topology_check_interval_s,
    )
    router.topology = topology
    topology.start()
    return router


def make_rate_limiter(settings: Settings, redis: Redis, breaker: CircuitBreaker) -> RateLimiter:
    """Per-key limits by tier, with each tier's plan for a Redis outage."""
    rates = {
        "critical": Rate(settings.rate_limit_critical_per_s, settings.rate_limit_critical_burst),
        "standard": Rate(settings.rate_limit_standard_per_s, settings.rate_limit_standard_burst),
        "refused": Rate(settings.rate_limit_refused_per_s, settings.rate_limit_refused_burst),
    }
    redis_down: dict[str, Literal["local", "closed"]] = {
        "critical": settings.rate_limit_critical_redis_down,
        "standard": settings.rate_limit_standard_redis_down,
        "refused": "local",
    }
    return RateLimiter(redis, breaker, rates, redis_down, settings.rate_limit_local_share)


def make_retrier(settings: Settings) -> Retrier:
    """Retries of transient database errors, with this worker's retry budget."""
    return Retrier(
        RetryPolicy(
            attempts=settings.db_retry_attempts,
            base_s=settings.db_retry_base_s,
            max_wait_s=settings.db_retry_max_wait_s,
            budget_ratio=settings.db_retry_budget_ratio,
            budget_reserve=settings.db_retry_budget_reserve,
        ),
        db_errors,
    )


def make_units(settings: Settings, *, near_cache: bool = True) -> Units:
    """The application layer's units of work, for a process without HTTP (a queue worker): the
    same router (it follows the primary), retries and cache invalidation as the API's."""
    redis = make_redis(settings)
    redis_breaker = CircuitBreaker("redis", breaker_policy(settings, settings.redis_slow_call_s))
    breakers = {**db_breakers(settings), "redis": redis_breaker}
    router = make_router(settings, redis, redis_breaker, breakers)
    cache = make_cache(settings, redis, redis_breaker, near_cache=near_cache)
    return Units(router, make_retrier(settings), cache, settings.cache_enabled)


def build_services(settings: Settings) -> Services:
    """Every long-lived part of an API worker, built once (the app keeps them for its routes as
    app.extensions["services"])."""
    redis = make_redis(settings)
    redis_breaker = CircuitBreaker("redis", breaker_policy(settings, settings.redis_slow_call_s))
    breakers = {**db_breakers(settings), "redis": redis_breaker}
    router = make_router(settings, redis, redis_breaker, breakers, settings.db_write_deadline_s)
    units = Units(
        router,
        make_retrier(settings),
        make_cache(settings, redis, redis_breaker),
        settings.cache_enabled,
    )
    limiter = make_rate_limiter(settings, redis, redis_breaker)
    services = Services(
        settings=settings,
        units=units,
        keys=Keys(units, settings.api_key_cache_ttl_s, settings.api_key_unknown_lookups_per_s),
        codec=TokenCodec(
            settings.app_secret_key.get_secret_value(), settings.consistency_cookie_max_age_s
        ),
        limiter=limiter,
        health=Health(
            router,
            breakers,
            redis,
            limiter,
            settings.api_name,
            BrokerStatus(
                (
                    settings.nats_servers,
                    settings.nats_system_user,
                    settings.nats_system_password.get_secret_value(),
                ),
                settings.events_stream,
                settings.consumer_name,
                settings.dead_letter_stream,
                settings.broker_check_interval_s,
            ),
        ),
        breakers=breakers,
    )
    OverrideWatcher(redis, breakers, settings.breaker_override_poll_s).start()
    return services
