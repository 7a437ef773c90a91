"""Polling with a deadline: the one way the launcher waits on processes it does not control."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(
    check: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.05,
    *,
    detail: Callable[[], str] | None = None,
    required: bool = True,
) -> T:
    """CHECK's first truthy value, polled every INTERVAL until TIMEOUT. After it: SystemExit
    saying WHAT did not happen (and DETAIL(), what was still missing), or, when not REQUIRED,
    CHECK's last (falsy) value, for waits that go on to a harder measure."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            if not required:
                return value
            missing = f" ({found})" if detail and (found := detail()) else ""
            raise SystemExit(f"{what}: not within {timeout:.0f}s{missing}")
        time.sleep(interval)
    return value
