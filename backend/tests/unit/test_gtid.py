"""GTID positions: parsed, compared, merged."""

from __future__ import annotations

import pytest

from app.gtid import covers, newest, parse_position


def test_a_position_is_the_highest_sequence_per_domain() -> None:
    assert parse_position("0-1-12,1-5-3") == {0: 12, 1: 3}
    assert parse_position("") == {}


@pytest.mark.parametrize(
    ("position", "gtid", "expected"),
    [
        ("0-1-12", "0-1-12", True),
        ("0-1-13", "0-1-12", True),
        ("0-1-11", "0-1-12", False),
        ("0-2-20", "0-1-12", True),  # a new primary continues the same domain's sequence
        ("1-1-99", "0-1-12", False),  # another domain says nothing about domain 0
        ("0-1-12,1-1-4", "0-1-12,1-1-5", False),
        ("", "0-1-1", False),
    ],
)
def test_covers(position: str, gtid: str, expected: bool) -> None:
    assert covers(position, gtid) is expected


def test_newest_keeps_the_highest_per_domain() -> None:
    assert newest("0-1-5", None, "0-1-9,1-1-2", "") == "0-1-9,1-1-2"
    assert newest(None, "") is None
