"""The stack's secrets: the first `make up` (or `make compose-up`) writes them into .env.

.env.example documents every setting, secrets included, with example values that are public.
No stack runs on those: before anything starts, every secret that .env lacks or that still
holds the example's value gets a random one, written to .env (mode 0600, readable by its owner
only). Settings other than secrets stay out of .env, so a later .env.example's defaults apply.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from stack.settings import REPO, read_env_file
from stack.ui import step

# Every password and key of the stack: databases, Redis, the broker's clients and routes, the
# token-signing key, Grafana's admin.
SECRETS = (
    "MYSQL_ADMIN_PASSWORD",
    "MYSQL_APP_PASSWORD",
    "MYSQL_REPL_PASSWORD",
    "REDIS_PASSWORD",
    "APP_SECRET_KEY",
    "NATS_RELAY_PASSWORD",
    "NATS_WORKER_PASSWORD",
    "NATS_READER_PASSWORD",
    "NATS_ADMIN_PASSWORD",
    "NATS_ROUTE_PASSWORD",
    "NATS_SYSTEM_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
)
HEADER = (
    "# Written by `make up`: this stack's own random secrets (never the public values of\n"
    "# .env.example). Keep this file: the data in the state dir was made with these. Any other\n"
    "# setting of .env.example may be overridden here too.\n"
)


def random_secret() -> str:
    """A letter, then 32 hex digits (128 bits): safe in URLs, SQL strings, shell words and config
    files. The letter first: nats-server reads the value of a $VARIABLE in its config as a config
    value, and one that starts with digits as a number ("1e5...", a float, fails the server's
    start; found when a fresh clone's random NATS_PASSWORD began that way)."""
    return "s" + secrets.token_hex(16)


def weak(name: str, value: str | None, example: dict[str, str]) -> bool:
    """Whether VALUE cannot serve as secret NAME: missing, empty, the public example's, or (for
    the broker's, which its config reads) not starting with a letter."""
    if not value or value == example.get(name):
        return True
    return name.startswith("NATS_") and not value[0].isalpha()


def ensure_env_file(
    env_file: Path = REPO / ".env", example_file: Path = REPO / ".env.example"
) -> list[str]:
    """Give every secret of ENV_FILE a random value where it has none or the example's; returns
    the names written. A secret set in the process environment is left to it."""
    example = read_env_file(example_file)
    current = read_env_file(env_file)
    missing = [
        name
        for name in SECRETS
        if weak(name, current.get(name), example) and not os.environ.get(name)
    ]
    if not missing:
        return []
    lines = env_file.read_text().splitlines() if env_file.exists() else HEADER.splitlines()
    kept = [line for line in lines if line.partition("=")[0].strip() not in missing]
    fresh = [f"{name}={random_secret()}" for name in missing]
    env_file.touch(mode=0o600, exist_ok=True)
    env_file.chmod(0o600)
    env_file.write_text("\n".join([*kept, *fresh]) + "\n")
    step("secrets", f"random {', '.join(missing)} written to {env_file} (0600)")
    return missing


if __name__ == "__main__":  # python3 -m stack.secrets: .env for a `docker compose up` by hand
    ensure_env_file()
