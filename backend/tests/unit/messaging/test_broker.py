"""The broker connection's errors: told once per outage, not once per reconnection attempt."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.messaging.broker import Outage


def test_an_outage_is_one_warning_and_its_end_counts_the_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage()

    async def run() -> None:
        for _ in range(40):  # ten seconds of failed reconnections, four a second
            await outage.error(ConnectionRefusedError("refused"))
        await outage.reconnected()
        await outage.error(ConnectionRefusedError("again"))

    with caplog.at_level(logging.INFO, logger="app.messaging.broker"):
        asyncio.run(run())
    said = [(r.levelno, r.getMessage(), getattr(r, "errors", None)) for r in caplog.records]
    assert said == [
        (logging.WARNING, "broker connection failing: reconnecting", None),
        (logging.INFO, "broker connection back", 40),
        (logging.WARNING, "broker connection failing: reconnecting", None),  # the next outage
    ]
