"""`make seed`: the id range it records is the users it loaded, every post has its user, and every
node plans queries with statistics that count the seeded rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.db.queries.posts import PAGE_SQL
from app.models import BIGINT_MAX as MAX_ID
from stack.settings import REPO, Stack
from tests.integration.conftest import TEST_STACK_ENV
from tests.integration.helpers import Api, Databases

pytestmark = pytest.mark.integration


def seed(users: int, chunk: int = 400) -> dict[str, int]:
    """Run `make seed`'s command on the test stack, in chunks of CHUNK users; its summary."""
    run = subprocess.run(
        [sys.executable, "-m", "stack", "seed"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            **TEST_STACK_ENV,
            "SEED_USERS": str(users),
            "SEED_CHUNK_USERS": str(chunk),
        },
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary: dict[str, int] = json.loads(
        (REPO / TEST_STACK_ENV["STACK_DIR"] / "seed.json").read_text()
    )
    return summary


def test_a_seed_loads_one_gapless_range_of_fresh_ids_in_chunks(
    stack: Stack, dbs: Databases, api: Api
) -> None:
    seed(1500)
    # The newest user is deleted: its id was handed out once and must not be seeded again.
    newest = api.create_user()["id"]
    assert api.delete(f"/api/users/{newest}").status_code == 204
    second = seed(1500)  # four chunks of 400 users
    first, last = second["first_id"], second["last_id"]
    assert first > newest
    assert (last - first + 1, second["users"]) == (1500, 1500)
    loaded = dbs.query(
        "primary", "SELECT MIN(id), MAX(id), COUNT(*) FROM users WHERE id >= %s", first
    )
    assert loaded[0] == (first, last, 1500)
    # The range stays reserved: the API's next user gets an id above it.
    assert api.create_user()["id"] > last
    orphans = (
        "SELECT COUNT(*) FROM posts LEFT JOIN users ON users.id = posts.user_id "
        "WHERE users.id IS NULL"
    )
    assert dbs.scalar("primary", orphans) == 0
    posts = dbs.scalar(
        "primary", "SELECT COUNT(*) FROM posts WHERE user_id BETWEEN %s AND %s", first, last
    )
    assert posts == second["posts"]
    assert 50 < posts < 300  # about one in ten


def test_after_a_seed_every_node_counts_the_rows_and_reads_posts_by_their_index(
    stack: Stack, dbs: Databases
) -> None:
    nodes = [node.name for node in stack.databases]
    before = {node: dbs.scalar(node, "SELECT NOW()") for node in nodes}
    summary = seed(800)
    statistics = (
        "SELECT table_name, n_rows, last_update FROM mysql.innodb_table_stats "
        "WHERE database_name = DATABASE() AND table_name IN ('users', 'posts')"
    )
    for node in nodes:
        counted = {table: (rows, updated) for table, rows, updated in dbs.query(node, statistics)}
        assert counted.keys() == {"users", "posts"}, node
        for table, (rows, updated) in counted.items():
            assert updated >= before[node], (node, table)  # recounted after the load began
            assert rows >= summary[table], (node, table)
        # A user's first page of posts, as the API asks for it: through the (user_id, id) index.
        plan = dbs.query(node, "EXPLAIN " + PAGE_SQL, summary["last_id"], MAX_ID, 20)
        assert [row[5] for row in plan] == ["ix_posts_user_id_id"], node  # EXPLAIN's `key`
