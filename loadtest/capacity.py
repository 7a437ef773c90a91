"""The capacity model: from daily active users to the peak request rate (docs/capacity.md).

DAU x requests per user per day / 86,400 s = the average rate; x the peak factor = the peak.
Every assumption is a setting, read from the environment, so the model and the `dau-peak` load
shape always agree. Plain Python: imported by Locust's shapes and by `make bench`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Model:
    """The assumptions, and the rates they give."""

    dau: float
    requests_per_user_per_day: float
    peak_factor: float

    @property
    def average_rps(self) -> float:
        """Requests/s if the day's traffic were spread evenly."""
        return self.dau * self.requests_per_user_per_day / SECONDS_PER_DAY

    @property
    def peak_rps(self) -> float:
        """Requests/s in the busiest hour."""
        return self.average_rps * self.peak_factor


def model() -> Model:
    """The model with the assumptions of this environment (DAU, REQUESTS_PER_USER_PER_DAY,
    PEAK_FACTOR; defaults 1,000,000, 30 and 3)."""
    return Model(
        dau=float(os.environ.get("DAU", 1_000_000)),
        requests_per_user_per_day=float(os.environ.get("REQUESTS_PER_USER_PER_DAY", 30)),
        peak_factor=float(os.environ.get("PEAK_FACTOR", 3)),
    )
