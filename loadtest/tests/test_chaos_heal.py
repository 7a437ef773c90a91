"""The failover row's heal (loadtest/chaos/faults.py, primary_returns): a former primary that
`make up` refuses is rebuilt, so the later rows meet the stack as configured, and the row is
told why it was not healed as it says."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from loadtest.chaos import faults
from loadtest.chaos.config import HealedOtherwise

STACK: Any = SimpleNamespace(host="127.0.0.1", primary=SimpleNamespace(port=23308))
REFUSED = "[replication] error: refused 127.0.0.1:23308: its GTID history diverged: it has 0-1-9\n"


def recording(monkeypatch: pytest.MonkeyPatch, up_says: str) -> list[tuple[str, dict[str, str]]]:
    """The launcher commands primary_returns will run, with make up's first answer UP_SAYS."""
    ran: list[tuple[str, dict[str, str]]] = []

    def launcher(command: str, overrides: dict[str, str] | None = None) -> str:
        ran.append((command, overrides or {}))
        return up_says if len(ran) == 1 else ""

    monkeypatch.setattr(faults, "launcher", launcher)
    monkeypatch.setattr(faults, "supervise", lambda *_: None)
    return ran


def test_a_former_primary_that_rejoins_is_switched_back_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran = recording(monkeypatch, "")
    faults.primary_returns(STACK)
    assert ran == [("up", {}), ("switchover", {"MYSQL_SWITCHOVER_TO": "127.0.0.1:23308"})]


def test_a_refused_former_primary_is_rebuilt_and_the_row_is_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran = recording(monkeypatch, REFUSED)
    with pytest.raises(HealedOtherwise, match=r"not back by make up: .*diverged.*rebuild-node"):
        faults.primary_returns(STACK)
    assert [command for command, _ in ran] == ["up", "rebuild-node", "up", "switchover"]
    assert ran[1][1] == {"NODE": "127.0.0.1:23308"}
