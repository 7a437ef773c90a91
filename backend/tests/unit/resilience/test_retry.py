"""Retries: only transient errors, only where safe, bounded by attempts and by the budget."""

from __future__ import annotations

import contextlib

import pymysql
import pytest

from app.db import errors
from app.db import errors as db_errors
from app.resilience import deadline
from app.resilience.retry import Retrier, RetryPolicy


def failing(code: int, times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def operation() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise pymysql.err.OperationalError(code, "injected")
        return "done"

    return calls, operation


def retrier(**policy: float) -> Retrier:
    return Retrier(RetryPolicy(base_s=0.0001, max_wait_s=0.001, **policy), db_errors)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "write", "retried"),
    [
        (errors.LOST_DURING_QUERY, False, True),
        (errors.SERVER_GONE, False, True),
        (errors.DEADLOCK, True, True),
        (errors.LOCK_WAIT_TIMEOUT, True, True),
        (errors.CANNOT_CONNECT, True, True),
        # The COMMIT may have been applied: running the write again could write twice.
        (errors.LOST_DURING_QUERY, True, False),
        (1062, True, False),  # a duplicate key is the request's problem, not a transient one
    ],
)
def test_what_is_retried(code: int, write: bool, retried: bool) -> None:
    calls, operation = failing(code, times=1)
    if retried:
        assert retrier().run(operation, kind="t", write=write) == "done"  # type: ignore[arg-type]
        assert len(calls) == 2
    else:
        with pytest.raises(pymysql.err.OperationalError):
            retrier().run(operation, kind="t", write=write)  # type: ignore[arg-type]
        assert len(calls) == 1


def test_attempts_are_bounded() -> None:
    calls, operation = failing(errors.DEADLOCK, times=10)
    with pytest.raises(pymysql.err.OperationalError):
        retrier(attempts=3).run(operation, kind="t", write=True)  # type: ignore[arg-type]
    assert len(calls) == 3


def test_an_empty_budget_stops_retries_until_requests_earn_more() -> None:
    budget_of_two = retrier(budget_reserve=2, budget_ratio=0.25)
    outcomes = []
    for _ in range(5):
        calls, operation = failing(errors.SERVER_GONE, times=1)
        with contextlib.suppress(pymysql.err.OperationalError):
            budget_of_two.run(operation, kind="t", write=False)  # type: ignore[arg-type]
        outcomes.append(len(calls))
    # Two retries banked, then each request earns a quarter: the fifth may retry again.
    assert outcomes == [2, 2, 1, 1, 2]


def test_a_write_whose_deadline_passed_is_not_tried_again() -> None:
    calls, operation = failing(errors.CANNOT_CONNECT, times=1)
    with deadline.within(0.0), pytest.raises(pymysql.err.OperationalError):
        retrier().run(operation, kind="t", write=True)  # type: ignore[arg-type]
    assert len(calls) == 1
