"""Progress and table output of the launcher: short, aligned, flushed at once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stack.settings import Stack

_started = time.monotonic()


def step(title: str, detail: str = "") -> None:
    """One line of progress, with the seconds since the command started."""
    elapsed = time.monotonic() - _started
    print(f"[{elapsed:6.1f}s] {title:<20} {detail}", flush=True)


def address_rows(stack: Stack, api_rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The ready table's rows (`make up`, `make compose-up`): the entry, API_ROWS, each
    database and Redis, with a command to try each."""
    host, database = stack.host, stack.env["MYSQL_DATABASE"]
    rows = [("service", "address", "try")]
    rows.append(("nginx (entry)", stack.base_url, f"curl {stack.internal_url}/readyz"))
    live = f"curl -N {stack.base_url}/api/stream/posts"
    rows.append(("live page", f"{stack.base_url}/live", live))
    rows += api_rows
    writer = stack.writer  # the failover record's primary, which need not be "primary"
    rows += [
        (
            f"mysql {db.name} ({'takes writes' if db == writer else 'replica'})",
            f"{host}:{db.port}",
            f"mariadb -h{host} -P{db.port} -u{stack.env['MYSQL_ADMIN_USER']} -p {database}",
        )
        for db in stack.databases
    ]
    rows.append(
        ("redis", f"{host}:{stack.redis_port}", f"redis-cli -p {stack.redis_port} --askpass")
    )
    return rows


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, as wide as their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
