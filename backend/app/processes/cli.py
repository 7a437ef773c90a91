"""Operator commands: API keys and circuit breaker overrides.

    python -m app.processes.cli keys create --tier critical --name billing
    python -m app.processes.cli keys list
    python -m app.processes.cli keys revoke <key id>
    python -m app.processes.cli breaker force <primary|replica-N|redis> <open|closed|auto>
    python -m app.processes.cli breaker list

Settings come from the environment, as for the API (``make key``, ``make breaker`` run these
with the stack's environment).
"""

from __future__ import annotations

import argparse
import sys

from redis import Redis

from app.config import Settings
from app.db.primary import FollowedPrimary
from app.db.queries import api_keys as key_rows
from app.db.topology import replica_name
from app.resilience.overrides import FORCEABLE, OVERRIDES_KEY
from app.services import api_keys


def keys_create(settings: Settings, tier: str, name: str) -> None:
    """Create a key and print it: the only time the whole key is shown."""
    key_id, key = FollowedPrimary(settings).run(
        lambda conn: api_keys.create_key(conn=conn, tier=tier, name=name)
    )
    print(f"created {tier} key {key_id} ({name}); it is shown only now:\n{key}")


def keys_list(settings: Settings) -> None:
    """Every key with its tier and state (never a secret)."""
    rows = FollowedPrimary(settings).run(lambda conn: key_rows.list_keys(conn=conn))
    print(f"{'key id':<14}{'tier':<10}{'state':<10}{'created (UTC)':<22}name")
    for row in rows:
        state = "revoked" if row["revoked_at"] else "active"
        created = row["created_at"].strftime("%Y-%m-%d %H:%M:%S")
        print(f"{row['key_id']:<14}{row['tier']:<10}{state:<10}{created:<22}{row['name']}")


def keys_revoke(settings: Settings, key_id: str) -> None:
    """Revoke a key (it stops working within API_KEY_CACHE_TTL_S)."""
    revoked = FollowedPrimary(settings).run(
        lambda conn: key_rows.revoke_key(conn=conn, key_id=key_id)
    )
    if not revoked:
        raise SystemExit(f"no active key {key_id}")
    print(f"revoked {key_id}; workers stop accepting it within {settings.api_key_cache_ttl_s:g}s")


def redis_client(settings: Settings) -> Redis:
    """Redis, as the API reaches it, answering str."""
    password = settings.redis_password.get_secret_value() or None
    return Redis.from_url(settings.redis_url, password=password, decode_responses=True)


def breaker_force(settings: Settings, name: str, state: str) -> None:
    """Pin breaker NAME open or closed on every API worker, or hand it back (auto)."""
    names = ["primary", *(replica_name(i) for i in range(len(settings.members()))), "redis"]
    if name not in names:
        raise SystemExit(f"unknown breaker {name}; one of: {', '.join(names)}")
    redis = redis_client(settings)
    if state == "auto":
        redis.hdel(OVERRIDES_KEY, name)
    else:
        redis.hset(OVERRIDES_KEY, name, state)
    print(f"breaker {name}: {state} (applied within {settings.breaker_override_poll_s:g}s)")


def breaker_list(settings: Settings) -> None:
    """The overrides in force (breakers not listed are automatic)."""
    raw: dict[str, str] = redis_client(settings).hgetall(OVERRIDES_KEY)  # type: ignore[assignment]  # decoded replies are str
    if not raw:
        print("no override: every breaker is automatic (states per worker: GET /readyz)")
    for name, state in sorted(raw.items()):
        print(f"{name}: forced {state}")


def parser() -> argparse.ArgumentParser:
    """The command line."""
    cli = argparse.ArgumentParser(
        prog="python -m app.processes.cli", description=__doc__.splitlines()[0]
    )
    groups = cli.add_subparsers(dest="group", required=True)
    keys = groups.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key (printed once)")
    create.add_argument("--tier", choices=api_keys.TIERS, default="standard")
    create.add_argument("--name", required=True, help="who the key is for")
    keys.add_parser("list", help="list keys")
    keys.add_parser("revoke", help="revoke a key").add_argument("key_id")
    breaker = groups.add_parser("breaker", help="circuit breaker overrides")
    actions = breaker.add_subparsers(dest="action", required=True)
    force = actions.add_parser("force", help="force a breaker open or closed, or back to auto")
    force.add_argument("name")
    force.add_argument("state", choices=[*FORCEABLE, "auto"])
    actions.add_parser("list", help="list overrides")
    return cli


def main(argv: list[str]) -> None:
    """Run one command."""
    args = parser().parse_args(argv)
    settings = Settings()  # type: ignore[call-arg]  # every field comes from the environment
    match args.group, args.action:
        case "keys", "create":
            keys_create(settings, args.tier, args.name)
        case "keys", "list":
            keys_list(settings)
        case "keys", "revoke":
            keys_revoke(settings, args.key_id)
        case "breaker", "force":
            breaker_force(settings, args.name, args.state)
        case _:
            breaker_list(settings)


if __name__ == "__main__":
    main(sys.argv[1:])
