"""Load shapes: find the knee (step), survive a burst (spike), hold the 1M-DAU peak (dau-peak),
burst writes past what the queue's workers apply (write-spike).

The dau-peak rate comes from the capacity model in docs/capacity.md: DAU x requests per user per
day / 86,400 s x peak factor (1,000,000 x 30 / 86,400 x 3 = 1,042 req/s by default). Each Locust
user aims at USER_RPS requests/s, so the shape runs rate / USER_RPS users.
"""

from __future__ import annotations

import math
import os
from typing import ClassVar

import capacity  # type: ignore[import-not-found]  # Locust puts this folder on sys.path
from locust import LoadTestShape


def env_float(name: str, default: float) -> float:
    """A number from the environment."""
    return float(os.environ.get(name, default))


def run_time(shape: LoadTestShape) -> float:
    """Seconds since the shape started (Locust's method has no type hints)."""
    seconds: float = shape.get_run_time()  # type: ignore[no-untyped-call]
    return seconds


def peak_rps() -> float:
    """Peak requests/s of the capacity model."""
    peak: float = capacity.model().peak_rps
    return peak


class StepShape(LoadTestShape):
    """Add STEP_USERS every STEP_SECONDS up to MAX_USERS, to see where latency bends (the knee)."""

    def tick(self) -> tuple[int, float] | None:
        """Users and spawn rate now, or None when done."""
        step_users, step_s = env_float("STEP_USERS", 10), env_float("STEP_SECONDS", 10)
        max_users = env_float("MAX_USERS", 60)
        steps = run_time(self) // step_s + 1
        if steps * step_users > max_users + step_users:
            return None
        return int(min(steps * step_users, max_users)), step_users


class SpikeShape(LoadTestShape):
    """BASE_USERS, then SPIKE_USERS for SPIKE_SECONDS, then back: does the stack recover?"""

    def tick(self) -> tuple[int, float] | None:
        """Users and spawn rate now, or None when done."""
        base, spike = int(env_float("BASE_USERS", 10)), int(env_float("SPIKE_USERS", 60))
        t = run_time(self)
        if t > 45:
            return None
        return (spike, 100.0) if 15 <= t < 30 else (base, 100.0)


class DauPeakShape(LoadTestShape):
    """Hold the capacity model's peak rate for PEAK_SECONDS after a short ramp."""

    def tick(self) -> tuple[int, float] | None:
        """Users and spawn rate now, or None when done."""
        users = math.ceil(peak_rps() / env_float("USER_RPS", 10))
        if run_time(self) > env_float("PEAK_SECONDS", 60) + 10:
            return None
        return users, max(users / 10, 1.0)


class WriteSpikeShape(LoadTestShape):
    """Posters only (the queue's spike, loadtest/queue_spike.py): BASE_USERS for 10 s,
    SPIKE_USERS for SPIKE_SECONDS, then BASE_USERS again while the backlog drains (DRAIN_SECONDS).
    The classes come from the locustfile (the shape names them in each tick)."""

    user_classes: ClassVar[list[type]] = []

    def tick(self) -> tuple[int, float, list[type]] | None:
        """Users, spawn rate and user classes now, or None when done."""
        base, spike = int(env_float("BASE_USERS", 2)), int(env_float("SPIKE_USERS", 30))
        spike_s, drain_s = env_float("SPIKE_SECONDS", 15), env_float("DRAIN_SECONDS", 35)
        t = run_time(self)
        if t > 10 + spike_s + drain_s:
            return None
        users = spike if 10 <= t < 10 + spike_s else base
        return users, 100.0, self.user_classes


SHAPES: dict[str, type[LoadTestShape]] = {
    "step": StepShape,
    "spike": SpikeShape,
    "dau-peak": DauPeakShape,
    "write-spike": WriteSpikeShape,
}


def by_name(name: str) -> type[LoadTestShape]:
    """The shape called NAME."""
    if name not in SHAPES:
        raise SystemExit(f"LOAD_SHAPE={name}: choose one of {', '.join(SHAPES)}")
    return SHAPES[name]
