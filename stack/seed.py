"""`make seed USERS=N`: bulk-load N users (and a post for about every tenth) into the primary, fast.

Users are written to a CSV file and loaded with LOAD DATA LOCAL INFILE; their posts are added by
one INSERT ... SELECT on the primary (one statement per table, row events in the binlog). Then the
command waits until every replica has applied them and prints the time of each step. The seeded
id range is kept in <state>/seed.json for load tests.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from stack.settings import Node, Stack
from stack.ui import step

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Linus",
    "Hedy",
    "Katherine",
    "Dennis",
    "Ken",
    "Radia",
    "Frances",
    "Leslie",
    "John",
    "Sophie",
    "Tim",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Torvalds",
    "Lamarr",
    "Johnson",
    "Ritchie",
    "Thompson",
    "Perlman",
    "Allen",
    "Lamport",
    "Backus",
]
POSTS_PER_USER = 0.1


def sql(stack: Stack, node: Node, statement: str, *, local_infile: bool = False) -> str:
    """Run STATEMENT on NODE as the app user (the account that owns the data); return its output."""
    command = [
        "mariadb",
        "--no-defaults",
        "--protocol=TCP",
        f"-h{stack.host}",
        f"-P{node.port}",
        f"-u{stack.env['MYSQL_APP_USER']}",
        "--batch",
        "--skip-column-names",
        stack.env["MYSQL_DATABASE"],
        "-e",
        statement,
    ]
    if local_infile:
        command.insert(2, "--local-infile=1")
    env = {**os.environ, "MYSQL_PWD": stack.env["MYSQL_APP_PASSWORD"]}
    return subprocess.run(
        command, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def write_users_csv(path: Path, count: int) -> None:
    """COUNT users as tab-separated name, second_name, created_at, updated_at."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    names = [f"{first}\t{last}\t{now}\t{now}\n" for first in FIRST for last in LAST]
    with path.open("w") as out:
        for start in range(0, count, 100_000):
            out.writelines(random.choices(names, k=min(100_000, count - start)))


def posts_for_seeded_users(first_id: int, last_id: int) -> str:
    """SQL giving about every tenth user of FIRST_ID..LAST_ID a post, picked on the primary.

    Owners come from the users table itself, so every post has a user even where the id range
    has gaps: InnoDB hands out auto-increment ids to a bulk load in growing batches, and the
    unused rest of the last batch is skipped, so a second seed does not start at MAX(id) + 1.
    """
    return (
        "SET SESSION foreign_key_checks = 0; "  # noqa: S608 (integers only, computed here)
        "INSERT INTO posts (user_id, body, created_at) "
        "SELECT id, CONCAT('Hello from user ', id), UTC_TIMESTAMP(6) FROM users "
        f"WHERE id BETWEEN {first_id} AND {last_id} AND RAND() < {POSTS_PER_USER}; "
        "SELECT ROW_COUNT()"
    )


def load(stack: Stack, path: Path, table: str, columns: str) -> None:
    """LOAD DATA LOCAL INFILE into TABLE on the primary."""
    sql(
        stack,
        stack.primary,
        "SET SESSION foreign_key_checks = 0, unique_checks = 0; "
        f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} ({columns})",
        local_infile=True,
    )


def wait_for_replicas(stack: Stack, timeout: float = 120) -> None:
    """Poll until every replica has applied the primary's current GTID position."""
    target = sql(stack, stack.primary, "SELECT @@gtid_binlog_pos")
    deadline = time.monotonic() + timeout
    for replica in stack.replicas:
        applied = f"SELECT MASTER_GTID_WAIT('{target}', 0.2)"
        while sql(stack, replica, applied) != "0":
            if time.monotonic() > deadline:
                raise SystemExit(f"{replica.name} did not catch up within {timeout:.0f}s")


def seed(stack: Stack, users: int) -> dict[str, int]:
    """Load USERS users and their posts, wait for the replicas; print each step's time."""
    work = stack.state / "seed"
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    before = int(sql(stack, stack.primary, "SELECT COALESCE(MAX(id), 0) FROM users"))
    write_users_csv(work / "users.tsv", users)
    step("seed", f"{users:,} users written to {work / 'users.tsv'}")
    load(stack, work / "users.tsv", "users", "name, second_name, created_at, updated_at")
    seeded = f"SELECT MIN(id), MAX(id), COUNT(*) FROM users WHERE id > {before}"  # noqa: S608
    first, last, count = (int(n) for n in sql(stack, stack.primary, seeded).split())
    step("seed", f"users {first:,}..{last:,} loaded into the primary")
    if count != last - first + 1:  # rows written by someone else meanwhile
        step("seed", f"note: {last - first + 1 - count:,} ids in that range are not seeded users")
    posts = int(sql(stack, stack.primary, posts_for_seeded_users(first, last)))
    step("seed", f"{posts:,} posts added on the primary")
    loaded = time.monotonic()
    wait_for_replicas(stack)
    done = time.monotonic()
    step("seed", f"{len(stack.replicas)} replica(s) caught up in {done - loaded:.1f}s")
    summary = {"first_id": first, "last_id": last, "users": users, "posts": posts}
    (stack.state / "seed.json").write_text(json.dumps(summary))
    print(
        f"\nSeeded {users:,} users and {posts:,} posts in {done - started:.1f}s "
        f"(load {loaded - started:.1f}s + replica catch-up {done - loaded:.1f}s)."
    )
    return summary
