"""A circuit breaker: closed, open, half-open, over a sliding window of recent calls.

* closed: calls pass; the outcomes of the last ``window`` calls, and of none older than
  ``window_s``, are kept. When a call fails (an error, or slower than ``slow_call_s``), at least
  ``min_calls`` are known and the share of failures reaches ``failure_rate``, the breaker opens.
  Outcomes expire so that failures from an outage that ended do not linger in a quiet worker's
  window until, minutes later, one new failure tips it open.
* open: calls are refused at once (the caller degrades instead of paying a timeout) for
  ``open_s`` seconds, then the breaker turns half-open.
* half-open: at most ``half_open_probes`` calls go through; a success closes the breaker, a failure
  opens it again.

State is per process (each gunicorn worker learns on its own, within a few calls). ``force()`` pins
the state for a manual override.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from app import metrics
from app.config import default
from app.errors import BreakerOpen

T = TypeVar("T")
log = logging.getLogger(__name__)


class State(StrEnum):
    """The three states, plus how they show in /readyz."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When to open, how long to stay open, how carefully to probe."""

    window: int = default("breaker_window")
    window_s: float = default("breaker_window_s")
    min_calls: int = default("breaker_min_calls")
    failure_rate: float = default("breaker_failure_rate")
    slow_call_s: float = default("db_slow_call_s")
    open_s: float = default("breaker_open_s")
    half_open_probes: int = default("breaker_half_open_probes")


class CircuitBreaker:
    """Guards calls to one dependency."""

    def __init__(
        self, name: str, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic
    ):
        """NAME shows in logs and /readyz; CLOCK is injectable for tests."""
        self.name, self.policy, self._clock = name, policy, clock
        self._state = State.CLOSED
        # (when, failed) of recent calls, oldest first.
        self._outcomes: deque[tuple[float, bool]] = deque(maxlen=policy.window)
        self._opened_at = 0.0
        self._probes = 0
        self._forced: State | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> State:
        """The current state (turning open into half-open once open_s has passed)."""
        with self._lock:
            return self._current()

    @property
    def forced(self) -> State | None:
        """The state pinned by a manual override, or None when automatic."""
        return self._forced

    def _current(self) -> State:
        if self._forced is not None:
            return self._forced
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.policy.open_s:
            self._state, self._probes = State.HALF_OPEN, 0
        return self._state

    def allow(self) -> bool:
        """May a call go through now? In half-open, each True is a probe that must be recorded."""
        with self._lock:
            state = self._current()
            if state is State.CLOSED:
                return True
            probing = state is State.HALF_OPEN and self._forced is None
            if probing and self._probes < self.policy.half_open_probes:
                self._probes += 1
                return True
            return False

    def record(self, ok: bool, duration_s: float = 0.0) -> None:
        """Record the outcome of a call that allow() let through."""
        failed = not ok or duration_s > self.policy.slow_call_s
        with self._lock:
            if self._forced is not None:
                return
            if self._state is State.HALF_OPEN:
                self._open() if failed else self._close()
                return
            now = self._clock()
            outcomes = self._outcomes
            outcomes.append((now, failed))
            while now - outcomes[0][0] > self.policy.window_s:
                outcomes.popleft()
            # Only a failure opens it: failures left in the window from an outage that ended
            # must not open it on the first successes after the dependency came back.
            if not failed or len(outcomes) < self.policy.min_calls:
                return
            if sum(f for _, f in outcomes) / len(outcomes) >= self.policy.failure_rate:
                self._open()

    def call(self, fn: Callable[[], T]) -> T:
        """Run FN under the breaker: refused when open, outcome and duration recorded."""
        if not self.allow():
            raise BreakerOpen(self.name, self.policy.open_s)
        started = self._clock()
        try:
            result = fn()
        except Exception:
            self.record(False, self._clock() - started)
            raise
        self.record(True, self._clock() - started)
        return result

    def reset(self) -> None:
        """Close and forget every outcome (the dependency is now another node), unless forced."""
        with self._lock:
            if self._forced is None:
                self._close()

    def force(self, state: State | None) -> None:
        """Pin the breaker open or closed (manual override); None returns it to automatic."""
        with self._lock:
            self._forced = state
            if state is None:
                self._close()
            metrics.BREAKER_OPEN.labels(self.name).set(int(state is State.OPEN))

    def _open(self) -> None:
        self._state, self._opened_at = State.OPEN, self._clock()
        self._outcomes.clear()
        metrics.BREAKER_OPEN.labels(self.name).set(1)
        log.warning("circuit breaker opened", extra={"breaker": self.name})

    def _close(self) -> None:
        if self._state is not State.CLOSED:
            log.warning("circuit breaker closed", extra={"breaker": self.name})
        self._state = State.CLOSED
        self._outcomes.clear()
        metrics.BREAKER_OPEN.labels(self.name).set(0)
