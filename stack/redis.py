"""Redis as the launcher runs it: the shared redis/redis.conf plus this instance's address, dir
and password (written mode 0600), and its program."""

from __future__ import annotations

from stack.account import Account
from stack.programs import digest, supervisor_env, supervisor_program
from stack.settings import REPO, Stack

REDIS_CONF = REPO / "redis" / "redis.conf"


def redis_config(stack: Stack) -> str:
    """The shared redis/redis.conf, plus this instance's address and dir."""
    return "\n".join(
        [
            f"include {REDIS_CONF}",
            f"bind {stack.host}",
            f"port {stack.redis_port}",
            f"dir {stack.state / 'redis'}",
            f"pidfile {stack.state / 'run' / 'redis.pid'}",
            f"requirepass {stack.env['REDIS_PASSWORD']}",
            "",
        ]
    )


def redis_program(stack: Stack, account: Account | None) -> str:
    """redis-server on the rendered config, as ACCOUNT."""
    return supervisor_program(
        stack,
        "redis",
        f"/usr/bin/redis-server {stack.state / 'redis.conf'}",
        account,
        priority="10",
        # The config's digest in Redis's environment: a changed config (a new password)
        # changes the program, and supervisord restarts Redis with it on `make up`.
        environment=supervisor_env({"REDIS_CONFIG_DIGEST": digest(redis_config(stack))}),
    )
