"""The short chaos run of `make test`: faults under load lose no acknowledged write."""

from __future__ import annotations

import pytest

from loadtest.chaos.checks import run_scenario
from loadtest.chaos.report import verdict
from loadtest.chaos.scenarios import SCENARIOS
from stack.settings import Stack

pytestmark = pytest.mark.integration
SHORT = ["Redis killed", "DB replica stopped", "kill -9 of an API replica"]


@pytest.mark.parametrize(
    "scenario", [s for s in SCENARIOS if s.name in SHORT], ids=lambda s: s.name
)
def test_a_fault_under_load_loses_nothing(stack: Stack, scenario: object) -> None:
    row = run_scenario(stack, scenario, fault_s=2.0)  # type: ignore[arg-type]
    assert row["acknowledged writes"] > 0
    assert row["lost writes"] == 0
    assert row["stale reads"] == 0
    assert row["failed reads"] == 0
    assert verdict(row), row
