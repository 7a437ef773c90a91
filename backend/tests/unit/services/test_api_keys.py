"""API keys: made-up ids cost the primary a bounded number of lookups; known keys are re-read."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import InvalidKey
from app.services.api_keys import Keys, digest

COLUMNS = ("key_id", "secret_sha256", "tier", "name", "revoked_at")


class StoredKeys:
    """A DBAPI connection (and its cursor) over a dict of key rows."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self.rows, self.description = rows, [(c,) for c in COLUMNS]
        self.found: dict[str, Any] | None = None

    def cursor(self) -> StoredKeys:
        return self

    def execute(self, sql: str, params: tuple[str]) -> None:
        self.found = self.rows.get(params[0])

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(self.found[c] for c in COLUMNS)] if self.found else []

    def close(self) -> None:
        return None


class FakeUnits:
    """Runs each read on the stored keys, counting them."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self.conn, self.reads = StoredKeys(rows), 0

    def read(self, fetch: Any, *_: Any, **__: Any) -> Any:
        self.reads += 1
        return fetch(self.conn)


KEY_ID, SECRET = "0123456789ab", "s3cret"
ROW = {"key_id": KEY_ID, "secret_sha256": digest(SECRET), "tier": "critical", "name": "n"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def made_up(n: int) -> str:
    return f"zk_{n:012x}_secret"


def test_a_flood_of_made_up_ids_costs_a_bounded_number_of_lookups() -> None:
    units, clock = FakeUnits({KEY_ID: {**ROW, "revoked_at": None}}), Clock()
    keys = Keys(units, ttl_s=5, unknown_per_s=10, clock=clock)  # type: ignore[arg-type]
    for n in range(500):
        with pytest.raises(InvalidKey):
            keys.identify(made_up(n))
    assert units.reads == 10
    clock.now += 1.0
    for n in range(500, 1000):
        with pytest.raises(InvalidKey):
            keys.identify(made_up(n))
    assert units.reads == 20


def test_a_known_key_is_read_again_when_its_row_expires_even_during_a_flood() -> None:
    units, clock = FakeUnits({KEY_ID: {**ROW, "revoked_at": None}}), Clock()
    keys = Keys(units, ttl_s=5, unknown_per_s=10, clock=clock)  # type: ignore[arg-type]
    assert keys.identify(f"zk_{KEY_ID}_{SECRET}").tier == "critical"
    for n in range(100):  # the allowance is spent
        with pytest.raises(InvalidKey):
            keys.identify(made_up(n))
    clock.now += 5.01  # its row expired; the allowance refilled meanwhile, so spend it again
    for n in range(100, 200):
        with pytest.raises(InvalidKey):
            keys.identify(made_up(n))
    reads = units.reads
    assert keys.identify(f"zk_{KEY_ID}_{SECRET}").tier == "critical"
    assert units.reads == reads + 1
