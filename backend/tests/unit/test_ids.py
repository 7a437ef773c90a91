"""unique_hex: well-formed, and different in every forked worker."""

from __future__ import annotations

import multiprocessing
import re

from app.ids import unique_hex


def test_unique_hex_is_128_bits_of_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", unique_hex())
    assert len({unique_hex() for _ in range(1000)}) == 1000


def draw(_: int) -> str:
    return unique_hex()


def test_forked_workers_draw_different_ids() -> None:
    unique_hex()  # the parent's state, which every child inherits at the fork
    with multiprocessing.get_context("fork").Pool(4) as pool:
        ids = pool.map(draw, range(4), chunksize=1)
    assert len(set(ids)) == len(ids)
