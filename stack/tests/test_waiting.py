"""The one wait helper (stack/waiting.py): every wait of the launcher goes through it."""

from __future__ import annotations

import itertools
import re

import pytest

from stack.settings import REPO
from stack.waiting import until


def test_the_first_truthy_value_is_returned() -> None:
    answers = iter([0, "", "leader-2"])
    assert until(lambda: next(answers), 1, "a leader", interval=0) == "leader-2"


def test_past_the_deadline_it_says_what_and_what_was_missing() -> None:
    with pytest.raises(SystemExit, match=r"the broker ready: not within 0s \(1/3 answering\)"):
        until(lambda: False, 0, "the broker ready", interval=0, detail=lambda: "1/3 answering")


def test_a_wait_that_is_not_required_returns_its_last_value() -> None:
    calls = itertools.count()
    assert until(lambda: next(calls) < 0, 0.01, "gone", interval=0, required=False) is False


def test_no_other_deadline_loop_is_written_in_the_launcher() -> None:
    loops = [
        f"{path.name}:{number}"
        for path in sorted((REPO / "stack").glob("*.py"))
        if path.name != "waiting.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"deadline = time\.monotonic\(\)", line)
    ]
    assert loops == []
