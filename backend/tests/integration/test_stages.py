"""`make stage N` (docs/tutorial.md) on the test stack: each step of the chapter answers the way
the tutorial says, as its headers show. The stages run 5, 1, 2, 3, 4: stage 4 is the test
stack's own shape (edge off, no stage server), so nothing needs restoring after."""

from __future__ import annotations

import pytest
import requests

from stack.settings import Stack
from tests.integration.conftest import launcher
from tests.integration.edge import admit, anonymous, edge_answer, serving
from tests.integration.helpers import Api

pytestmark = pytest.mark.integration


def stage(n: int) -> str:
    """`make stage N=n`; what it printed."""
    return launcher("stage", {"STAGE": str(n)}).stdout


def test_each_stage_answers_the_way_the_tutorial_says(api: Api, stack: Stack) -> None:
    user = api.create_user("Stage", "Walker")
    path = f"/api/users/{user['id']}"
    server = f"http://{stack.host}:{stack.env['STAGE_PORT']}"

    assert "Stage 5" in stage(5)  # the full stack: the edge keeps anonymous reads
    serving(stack)
    admit(stack, path)
    assert edge_answer(stack, path).json() == user

    assert f"send requests to {server}" in stage(1)  # one server, the primary only, no cache
    one = requests.get(f"{server}{path}", timeout=10)
    assert one.json() == user
    assert (one.headers["X-Served-By"], one.headers["X-DB-Node"], one.headers["X-Cache"]) == (
        "stage-server",
        "primary",
        "BYPASS",
    )

    stage(2)  # the same server reads the replicas
    two = requests.get(f"{server}{path}", timeout=10)
    assert two.headers["X-DB-Node"].startswith("replica-"), dict(two.headers)
    assert two.headers["X-Cache"] == "BYPASS"

    stage(3)  # through the cache: a user just written is filled on its first miss, then a hit
    fresh = f"/api/users/{api.create_user('Stage', 'Three')['id']}"
    caches = [requests.get(f"{server}{fresh}", timeout=10).headers["X-Cache"] for _ in range(2)]
    assert caches == ["MISS", "HIT"]

    stage(4)  # nginx over the API replicas; no stage server, no edge
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server}{path}", timeout=5)
    answers = [anonymous(stack, path) for _ in range(4)]
    assert all(a.headers["X-Served-By"].startswith("api-") for a in answers)
    assert "EDGE" not in {a.headers["X-Cache"] for a in answers}
