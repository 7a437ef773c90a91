"""A unit of work's deadline: nested ones never extend it, and none means no bound."""

from __future__ import annotations

from app.resilience import deadline


def test_without_a_deadline_nothing_is_bounded() -> None:
    assert deadline.left() is None
    assert not deadline.passed()
    with deadline.within(None):
        assert deadline.left() is None


def test_a_deadline_counts_down_and_ends_with_its_block() -> None:
    with deadline.within(5.0):
        left = deadline.left()
        assert left is not None
        assert 4.0 < left <= 5.0
    assert deadline.left() is None


def test_a_nested_deadline_never_gets_more_time_than_the_enclosing_one() -> None:
    with deadline.within(1.0):
        with deadline.within(60.0):
            left = deadline.left()
            assert left is not None
            assert left <= 1.0
        with deadline.within(None):  # a unit of work without its own: the request's still holds
            left = deadline.left()
            assert left is not None
            assert left <= 1.0
        with deadline.within(0.0):
            assert deadline.passed()
        assert not deadline.passed()
