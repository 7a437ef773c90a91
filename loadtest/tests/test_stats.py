"""The load tools' one percentile."""

from __future__ import annotations

import math

from loadtest.harness.stats import percentile


def test_the_nearest_rank_of_unsorted_values() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1
    assert percentile(values, 0.99) == 100.0
    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0


def test_no_values_have_no_percentile() -> None:
    assert math.isnan(percentile([], 0.5))
