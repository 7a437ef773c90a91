"""`make chaos`'s stack (its own ports and state dir) and settings, and the launcher on it."""

from __future__ import annotations

import os
import subprocess
import sys

from stack.settings import REPO

CHAOS_ENV = {
    "STACK_DIR": ".stack-chaos",
    "NGINX_PORT": "28080",
    "NGINX_INTERNAL_PORT": "28081",
    # The chaos clients run here: capacity and faults are measured, not nginx's limiter.
    "NGINX_RATE_LIMIT_EXEMPT": "127.0.0.1/32",
    "API_BASE_PORT": "28001",
    "MYSQL_PRIMARY_PORT": "23308",
    "MYSQL_REPLICA_PORTS": "23307,23309",
    "REDIS_PORT": "26380",
    "NATS_CLIENT_PORTS": "24222,24223,24224",
    "NATS_CLUSTER_PORTS": "26222,26223,26224",
    "RELAY_METRICS_BASE_PORT": "29101",
    "WORKER_METRICS_BASE_PORT": "29111",
    "EDGE_PURGER_METRICS_PORT": "29121",
    "PUSH_BASE_PORT": "28101",
    "REPLICAS": "2",
    "API_REPLICAS": "3",
    "APP_ENV": "test",
    # All chaos clients share one critical key; its limit is not what this run is about.
    "RATE_LIMIT_CRITICAL_PER_S": "1000",
    "RATE_LIMIT_CRITICAL_BURST": "2000",
}


FAULT_S = float(os.environ.get("CHAOS_FAULT_SECONDS", "8"))
CLIENTS = int(os.environ.get("CHAOS_CLIENTS", "4"))


def launcher(command: str, overrides: dict[str, str] | None = None) -> str:
    """The native launcher on the chaos stack, with OVERRIDES of its settings. What it says on
    stderr is shown and returned, and kept in the CalledProcessError when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "stack", command],
        cwd=REPO,
        env={**os.environ, **CHAOS_ENV, **(overrides or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    sys.stderr.write(done.stderr)
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, done.args, stderr=done.stderr)
    return done.stderr


class HealedOtherwise(Exception):
    """The heal a scenario names did not bring the stack back, and another one did (the row's
    problem; the next scenarios still meet the stack as configured)."""
