"""Where a freshness run's time went (loadtest/freshness.py): counts grown during the run, per
process, summed by name; a process that restarted meanwhile counts from zero."""

from __future__ import annotations

from loadtest.freshness import increase

NAME = 'edge_purge_lag_seconds_bucket{kind="write",le="0.1"}'


def test_counts_grow_per_process_and_sum_by_name() -> None:
    before = {(9121, NAME): 10.0, (9101, "relay_publish_failures_total"): 2.0}
    after = {(9121, NAME): 15.0, (9101, "relay_publish_failures_total"): 2.0}
    assert increase(before, after) == {NAME: 5.0, "relay_publish_failures_total": 0.0}


def test_a_process_that_restarted_counts_from_zero_never_below() -> None:
    """The killed purger's counts start again: 600 before, 7 after is 7 purges, not -593."""
    before = {(9121, NAME): 600.0, (9101, NAME): 3.0}
    after = {(9121, NAME): 7.0, (9101, NAME): 4.0}
    assert increase(before, after) == {NAME: 8.0}


def test_a_count_first_seen_after_the_start_is_all_new() -> None:
    assert increase({}, {(9121, NAME): 4.0}) == {NAME: 4.0}
