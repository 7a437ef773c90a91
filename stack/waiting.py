"""Polling with a deadline, for the launcher's waits on processes it does not control."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """CHECK's first truthy value, polled every INTERVAL until TIMEOUT; after it, SystemExit
    saying WHAT did not happen."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)
    return value
