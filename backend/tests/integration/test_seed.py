"""`make seed`: the id range it records is the users it loaded, and every post has its user."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stack.settings import REPO, Stack
from tests.integration.conftest import TEST_STACK_ENV
from tests.integration.helpers import Databases

pytestmark = pytest.mark.integration


def seed(users: int) -> dict[str, int]:
    run = subprocess.run(
        [sys.executable, "-m", "stack", "seed"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **TEST_STACK_ENV, "SEED_USERS": str(users)},
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary: dict[str, int] = json.loads(
        (REPO / TEST_STACK_ENV["STACK_DIR"] / "seed.json").read_text()
    )
    return summary


def test_a_second_seed_records_the_ids_it_really_loaded(stack: Stack, dbs: Databases) -> None:
    seed(1500)
    # A bulk load reserves auto-increment ids in growing batches and skips what it did not use:
    # the next load starts above MAX(id) + 1.
    second = seed(1500)
    first, last = second["first_id"], second["last_id"]
    loaded = dbs.query(
        "primary", "SELECT MIN(id), MAX(id), COUNT(*) FROM users WHERE id >= %s", first
    )
    assert loaded[0] == (first, last, 1500)
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
