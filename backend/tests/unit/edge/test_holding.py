"""What the purger holds: the bounded memory of early nudges."""

from __future__ import annotations

from app.edge.holding import Recent


def test_the_memory_of_early_nudges_keeps_the_last_ones_only() -> None:
    recent = Recent(2)
    for seq in (1, 2, 3):
        recent.add(seq)
    assert 1 not in recent
    assert 2 in recent
    assert 3 in recent
