"""Retries of transient database errors: exponential backoff with full jitter, and a budget.

tenacity does the looping and the waiting (``wait_random_exponential`` is "full jitter": a
uniformly random wait between 0 and the exponential bound, so retries from many workers do not
arrive in lockstep). Two limits keep retries from amplifying an outage:

* bounded attempts per operation (``attempts``);
* a retry budget per worker: every first attempt earns ``ratio`` of a token, every retry spends
  a whole one, and the balance is capped at ``reserve``. When a dependency fails for everyone,
  retries quickly drain the budget and the load it sees stays near 1 + ratio times the normal.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_random_exponential

from app import metrics
from app.config import default
from app.resilience import deadline

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry."""

    attempts: int = default("db_retry_attempts")
    base_s: float = default("db_retry_base_s")
    max_wait_s: float = default("db_retry_max_wait_s")
    budget_ratio: float = default("db_retry_budget_ratio")
    budget_reserve: float = default("db_retry_budget_reserve")


class RetryBudget:
    """Tokens earned by first attempts and spent by retries (thread-safe, per process)."""

    def __init__(self, ratio: float, reserve: float) -> None:
        """Start full: a fresh worker may retry RESERVE times before earning more."""
        self.ratio, self.reserve, self._tokens = ratio, reserve, reserve
        self._lock = threading.Lock()

    def earn(self) -> None:
        """A first attempt was made."""
        with self._lock:
            self._tokens = min(self.reserve, self._tokens + self.ratio)

    def spend(self) -> bool:
        """Take one token for a retry; False when the budget is exhausted."""
        with self._lock:
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class ErrorKinds(Protocol):
    """How a retrier tells errors apart (a module such as app.db.errors, or a test's fake)."""

    def is_transient(self, error: BaseException, *, write: bool) -> bool:
        """May ERROR go away on a second try, and is trying again safe for this kind of work?"""

    def error_code(self, error: BaseException) -> int | None:
        """A number that names ERROR in logs (None: none)."""


class Retrier:
    """Runs operations with retries of transient errors, within the budget."""

    def __init__(self, policy: RetryPolicy, errors: ErrorKinds) -> None:
        """One retrier (and budget) per worker process; ERRORS tells which errors are worth a
        retry (the database's, app.db.errors: this layer knows no database)."""
        self.policy, self.errors = policy, errors
        self.budget = RetryBudget(policy.budget_ratio, policy.budget_reserve)

    def run(self, operation: Callable[[], T], *, kind: str, write: bool) -> T:
        """OPERATION's result; transient errors safe for this KIND of work are tried again.

        The first attempt is a plain call: it is nearly every call, and tenacity's machinery
        costs about 40 µs per use (measured), a few percent of a whole request here. Only once
        it failed in a way worth retrying does tenacity run the remaining attempts.
        """
        self.budget.earn()
        try:
            return operation()
        except Exception as error:
            if not self._worth_retrying(error, 1, kind=kind, write=write):
                raise

        def worth_retrying(state: RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            attempt = state.attempt_number + 1  # tenacity counts from the first retry
            return self._worth_retrying(error, attempt, kind=kind, write=write)

        policy = self.policy
        # Full jitter: the n-th wait is uniform in [0, min(max, base * 2^(n-1))]. The first is
        # taken here; tenacity's waits continue the series (its multiplier starts one step on).
        time.sleep(random.uniform(0, min(policy.base_s, policy.max_wait_s)))
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts - 1),
            wait=wait_random_exponential(multiplier=policy.base_s * 2, max=policy.max_wait_s),
            retry=worth_retrying,
            reraise=True,
        )
        return retrying(operation)

    def _worth_retrying(
        self, error: BaseException | None, attempt: int, *, kind: str, write: bool
    ) -> bool:
        """Is ERROR, after ATTEMPT attempts, retried? Spends a budget token when it is."""
        if error is None or not self.errors.is_transient(error, write=write):
            return False
        if attempt >= self.policy.attempts:
            return False  # out of attempts: no budget spent, no retry announced
        if deadline.passed():
            return False  # the unit of work's time is up: a retry would only be cut short
        if not self.budget.spend():
            metrics.RETRIES.labels(kind, "budget_exhausted").inc()
            return False
        metrics.RETRIES.labels(kind, "retried").inc()
        log.warning(
            "retrying after a transient database error",
            extra={"kind": kind, "attempt": attempt, "code": self.errors.error_code(error)},
        )
        return True
