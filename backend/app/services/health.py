"""Readiness: a live look at every dependency, next to what this worker's router and breakers
think of it. Looking changes nothing: no breaker, monitor or routing state moves because a probe
asked (the primary's check is a real write, to its own probes row).
"""

from __future__ import annotations

import time
from typing import Any

from redis import Redis

from app.db.errors import READ_ONLY, is_code
from app.db.probes import ask_primary, observe
from app.db.routing import PRIMARY, Router, View
from app.messaging.status import BrokerStatus
from app.resilience.breaker import CircuitBreaker, State
from app.resilience.ratelimit import RateLimiter

PROBE = (
    "INSERT INTO probes (api, ts) VALUES (%s, UTC_TIMESTAMP(6)) "
    "ON DUPLICATE KEY UPDATE ts = VALUES(ts)"
)
# Semi-synchronous replication on the primary: off (by setting), on, or fallen back to
# asynchronous (no replica acknowledged within MYSQL_SEMI_SYNC_TIMEOUT_MS).
SEMI_SYNC = (
    "SELECT @@rpl_semi_sync_master_enabled, (SELECT VARIABLE_VALUE FROM "
    "information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS')"
)
OPEN_STATES = {State.OPEN.value, f"forced_{State.OPEN.value}"}  # half-open lets probes through
# Database states in which a node still serves reads.
READABLE = {"ok", "ejected", "stopped", "read_only"}
NOT_DATABASES = {"redis", "heartbeat", "broker", "edge"}
Check = dict[str, Any]


def timed(check: Check, started: float) -> Check:
    """CHECK with its latency in ms."""
    return {**check, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


class Health:
    """The checks behind /readyz."""

    def __init__(
        self,
        router: Router,
        breakers: dict[str, CircuitBreaker],
        redis: Redis,
        limiter: RateLimiter,
        api_name: str,
        broker: BrokerStatus | None = None,
    ) -> None:
        """API_NAME names this API replica's row in the probes table; BROKER reads the message
        queue's broker (none: not checked)."""
        self.router, self.breakers, self.redis = router, breakers, redis
        self.limiter, self.api_name = limiter, api_name[:64]
        self.broker = broker

    def readiness(self) -> tuple[Check, bool]:
        """Every check, the overall status, and whether reads can be served (ready).

        A down primary makes the service degraded, not unready: reads go on from the replicas
        and the cache, and taking every API replica out of a load balancer would stop those too.
        """
        view = self.router.view
        checks = {"primary": self.check_primary(view)}
        for name in view.replica_names:
            checks[name] = self.check_replica(view, name)
        checks["heartbeat"] = self.check_heartbeat(view)
        checks["redis"] = self.check_redis()
        if self.broker is not None:
            # Writes never wait for the broker (the outbox holds their events): a broker down
            # is degraded, never unready.
            started = time.perf_counter()
            broker = self.broker.check()
            checks["broker"] = timed({k: v for k, v in broker.items() if k != "edge"}, started)
            # The edge purgers' positions, from the same look (no edge purger: none reported).
            if (edge := broker.get("edge")) and edge["status"] != "no_purger":
                checks["edge"] = timed(edge, started)
        degraded = sorted(name for name, check in checks.items() if check["status"] != "ok")
        if checks["primary"].get("semi_sync") == "fallen_back":
            # Writes go on, but an acknowledged one may now exist on the primary alone.
            degraded = sorted([*degraded, "semi_sync"])
        topology = self.topology(view)
        if topology.get("ambiguous"):
            degraded = sorted([*degraded, "topology"])
        readable = [
            n for n, c in checks.items() if n not in NOT_DATABASES and c["status"] in READABLE
        ]
        status = "unavailable" if not readable else ("degraded" if degraded else "ok")
        body = {"status": status, "degraded": degraded, "writable": "primary" not in degraded}
        return {**body, "topology": topology, "checks": checks}, bool(readable)

    def topology(self, view: View) -> Check:
        """Which member this worker writes to and which it reads from (host:port by name); with
        more than one member writable, which (a fence failed: this worker keeps its primary)."""
        nodes = {
            name: f"{engine.url.host}:{engine.url.port}"
            for name, engine in view.nodes.readers.items()
        }
        ambiguous = self.router.topology.ambiguous if self.router.topology else []
        return {"nodes": nodes, **({"ambiguous": ambiguous} if ambiguous else {})}

    def breaker_state(self, name: str) -> str:
        """The state of NAME's breaker in this worker, marked when an operator forced it."""
        breaker = self.breakers[name]
        return f"forced_{breaker.state.value}" if breaker.forced else breaker.state.value

    def with_breaker(self, check: Check, name: str) -> Check:
        """CHECK plus the node's breaker; a node that answers but whose breaker is open is
        unused."""
        state = self.breaker_state(name)
        if check["status"] == "ok" and state in OPEN_STATES:
            check = {**check, "status": "breaker_open"}
        return {**check, "breaker": state}

    def check_primary(self, view: View) -> Check:
        """The primary's write path: a real write (this replica's row in probes), committed;
        and its semi-synchronous replication (on, off, or fallen_back to asynchronous)."""
        started = time.perf_counter()
        try:
            with view.nodes.writer.begin() as conn:
                conn.exec_driver_sql(PROBE, (self.api_name,))
                enabled, active = conn.exec_driver_sql(SEMI_SYNC).one()
        except Exception as error:  # any failure of a dependency is a finding, not a crash
            status = "read_only" if is_code(error, READ_ONLY) else "down"
            breaker = self.breaker_state(PRIMARY)
            return timed(
                {"status": status, "breaker": breaker, "error": type(error).__name__}, started
            )
        semi_sync = "off" if not enabled else ("on" if active == "ON" else "fallen_back")
        return timed(self.with_breaker({"status": "ok", "semi_sync": semi_sync}, PRIMARY), started)

    def check_replica(self, view: View, name: str) -> Check:
        """A live look at one replica, next to what the router currently thinks of it."""
        started = time.perf_counter()
        monitor, engine = view.monitor, view.nodes.readers[name]
        seen, _ = monitor.judge(name, observe(engine), engine)  # the lag the router acts on
        state = monitor.states[name]
        if not seen.reachable:
            status = "down"
        elif not seen.replicating:
            status = "stopped"
        else:
            status = "ok" if state.admitted else "ejected"
        check = {
            "status": status,
            "admitted": state.admitted,
            "lag_s": seen.lag_s,
            "reason": seen.problem or state.reason,
        }
        return timed(self.with_breaker(check, name), started)

    def check_heartbeat(self, view: View) -> Check:
        """The heartbeat writer: the age of its row on the primary. While it has stalled, replica
        lag is measured by GTID instead (app.db.monitor), so this degrades nothing but is named."""
        started = time.perf_counter()
        primary = ask_primary(view.nodes.readers[PRIMARY])
        if primary is None or primary.heartbeat_age is None:
            return timed({"status": "unknown", "age_s": None}, started)
        age, limit = primary.heartbeat_age, view.monitor.policy.eject_above_s
        return timed({"status": "ok" if age <= limit else "stalled", "age_s": age}, started)

    def check_redis(self) -> Check:
        """Redis answers PING; this process's breaker around it; while it is down, the plan each
        rate-limit tier follows (docs/security.md)."""
        started = time.perf_counter()
        breaker = self.breaker_state("redis")
        try:
            self.redis.ping()
        except Exception as error:  # any failure of a dependency is a finding, not a crash
            check = {"status": "down", "breaker": breaker, "error": type(error).__name__}
            return timed({**check, "rate_limits_without_redis": self.limiter.redis_down}, started)
        return timed({"status": "ok", "breaker": breaker}, started)
