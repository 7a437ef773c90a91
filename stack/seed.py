"""`make seed USERS=N`: bulk-load N users (and a post for about every tenth) into the primary, fast.

The users get one block of fresh ids, reserved up front, and go in as chunks of tab-separated
rows, each loaded with LOAD DATA LOCAL INFILE; each chunk's posts are added by one INSERT ...
SELECT over that chunk's ids. Every chunk is its own transaction, so the replicas apply one chunk
while the primary loads the next (a single transaction reaches the replicas only when it commits,
and they would start only then). Then ANALYZE TABLE refreshes the optimizer statistics on every
node, the command waits until every replica has applied everything, and prints the time of each
step. The seeded id range is kept in <state>/seed.json for load tests.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from stack.settings import Node, Stack
from stack.ui import step
from stack.waiting import until

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
# Users per transaction: small enough that the replicas keep up chunk by chunk, large enough
# that per-statement costs do not add up (measured in docs/benchmarks.md, "Seeding").
CHUNK_USERS = int(os.environ.get("SEED_CHUNK_USERS", "200000"))


def mariadb(stack: Stack, node: Node, statement: str, *, local_infile: bool = False) -> list[str]:
    """The mariadb command line running STATEMENT on NODE as the app user (who owns the data)."""
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
    return command


def client_env(stack: Stack) -> dict[str, str]:
    """The environment of a mariadb client: the app user's password, never on the command line."""
    return {**os.environ, "MYSQL_PWD": stack.env["MYSQL_APP_PASSWORD"]}


def sql(stack: Stack, node: Node, statement: str) -> str:
    """Run STATEMENT on NODE as the app user; return its output."""
    return subprocess.run(
        mariadb(stack, node, statement),
        check=True,
        capture_output=True,
        text=True,
        env=client_env(stack),
    ).stdout.strip()


def write_users(path: Path, first_id: int, count: int) -> None:
    """COUNT users from FIRST_ID on: tab-separated id, name, second_name, created_at, updated_at."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    names = [f"\t{first}\t{last}\t{now}\t{now}\n" for first in FIRST for last in LAST]
    with path.open("w") as out:
        out.writelines(
            f"{user_id}{name}"
            for user_id, name in zip(
                range(first_id, first_id + count), random.choices(names, k=count), strict=True
            )
        )


def reserve_ids(stack: Stack, count: int) -> int:
    """The first of COUNT fresh user ids, reserved: the API's own inserts get ids above them.

    Fresh means never handed out (from AUTO_INCREMENT, not MAX(id) + 1), so no cache can hold an
    answer for a deleted user with one of these ids.
    """
    table = (
        "SELECT AUTO_INCREMENT FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users'"
    )
    first = int(sql(stack, stack.writer, table))
    # The ALTER waits for transactions on users to end, and queues the API's behind it: bounded.
    bounded = "SET SESSION lock_wait_timeout = 10; "
    sql(stack, stack.writer, f"{bounded}ALTER TABLE users AUTO_INCREMENT = {first + count}")
    return first


def load_chunk(stack: Stack, path: Path, first_id: int, last_id: int) -> subprocess.Popen[str]:
    """Start loading the users in PATH (ids FIRST_ID..LAST_ID) and giving about every tenth a post.

    One session: the users in one LOAD DATA (a row whose id an API insert took in the moment
    before the reservation is skipped, not overwritten), then the posts, picked on the primary
    from the users the chunk really holds. Prints the users and posts added.
    """
    statement = (
        "SET SESSION foreign_key_checks = 0, unique_checks = 0; "  # noqa: S608 (our own values)
        f"LOAD DATA LOCAL INFILE '{path}' IGNORE INTO TABLE users "
        "(id, name, second_name, created_at, updated_at); "
        "SET @users = ROW_COUNT(); "
        "INSERT INTO posts (user_id, body, created_at) "
        "SELECT id, CONCAT('Hello from user ', id), UTC_TIMESTAMP(6) FROM users "
        f"WHERE id BETWEEN {first_id} AND {last_id} AND RAND() < {POSTS_PER_USER}; "
        "SELECT @users, ROW_COUNT()"
    )
    return subprocess.Popen(
        mariadb(stack, stack.writer, statement, local_infile=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=client_env(stack),
    )


def finish(load: subprocess.Popen[str]) -> tuple[int, int]:
    """Wait for a chunk's load: (users, posts) it added."""
    out, err = load.communicate()
    if load.returncode != 0:
        raise SystemExit(f"loading a chunk failed: {err.strip()}")
    users, posts = (int(n) for n in out.split())
    return users, posts


def refresh_statistics(stack: Stack) -> None:
    """Have every node recount the optimizer statistics of the seeded tables.

    A replica that bulk-loads into an empty table keeps the statistics of an empty table (the
    primary recounts by itself; MariaDB 10.11's replicas were seen not to), and plans queries as
    if it held no rows. ANALYZE TABLE goes to the binary log, so each replica runs it in turn.
    """
    sql(stack, stack.writer, "ANALYZE TABLE users, posts")
    step("seed", "optimizer statistics refreshed (ANALYZE TABLE, replicated)")


def caught_up(stack: Stack, replica: Node, applied: str) -> bool:
    """Whether REPLICA has applied the position the query APPLIED waits for."""
    return sql(stack, replica, applied) == "0"


def wait_for_replicas(stack: Stack, timeout: float = 120) -> None:
    """Poll until every replica has applied the primary's current GTID position."""
    target = sql(stack, stack.writer, "SELECT @@gtid_binlog_pos")
    applied = f"SELECT MASTER_GTID_WAIT('{target}', 0.2)"  # waits 0.2 s on the replica itself
    for replica in stack.replicas:
        until(
            partial(caught_up, stack, replica, applied),
            timeout,
            f"{replica.name} catching up",
            0.0,
        )


def seed(stack: Stack, users: int) -> dict[str, int]:
    """Load USERS users and their posts, wait for the replicas; print each step's time."""
    if users < 1 or CHUNK_USERS < 1:
        raise SystemExit("USERS and SEED_CHUNK_USERS must be positive")
    work = stack.state / "seed"
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    first = reserve_ids(stack, users)
    last = first + users - 1
    step("seed", f"ids {first:,}..{last:,} reserved for {users:,} users")
    loaded = posts = 0

    def tally(load: subprocess.Popen[str]) -> None:
        nonlocal loaded, posts
        added_users, added_posts = finish(load)
        loaded, posts = loaded + added_users, posts + added_posts
        step("seed", f"{loaded:,} / {users:,} users, {posts:,} posts on the primary")

    running: subprocess.Popen[str] | None = None
    for index, chunk_first in enumerate(range(first, last + 1, CHUNK_USERS)):
        chunk_last = min(chunk_first + CHUNK_USERS, last + 1) - 1
        path = work / f"users-{index % 2}.tsv"  # the file of the chunk still loading is kept
        write_users(path, chunk_first, chunk_last - chunk_first + 1)
        if running is not None:  # the previous chunk loaded while this one was written
            tally(running)
        running = load_chunk(stack, path, chunk_first, chunk_last)
    if running is not None:
        tally(running)
    if loaded != users:  # ids an API insert took in the moment before the reservation
        step("seed", f"note: {users - loaded:,} ids in that range are not seeded users")
    refresh_statistics(stack)
    on_primary = time.monotonic()
    wait_for_replicas(stack)
    done = time.monotonic()
    step("seed", f"{len(stack.replicas)} replica(s) caught up {done - on_primary:.1f}s later")
    summary = {"first_id": first, "last_id": last, "users": loaded, "posts": posts}
    (stack.state / "seed.json").write_text(json.dumps(summary))
    print(
        f"\nSeeded {loaded:,} users and {posts:,} posts in {done - started:.1f}s "
        f"(on the primary {on_primary - started:.1f}s + replica catch-up {done - on_primary:.1f}s)."
    )
    return summary
