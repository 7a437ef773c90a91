"""`make bench-push`'s settings (environment variables BENCH_PUSH_*)."""

from __future__ import annotations

import os

from stack.settings import REPO

CHART = REPO / "imgs" / "push-bench.png"
LADDER = [int(n) for n in os.environ.get("BENCH_PUSH_STREAMS", "250,500,1000,2000,4000").split(",")]
CLIENTS = int(os.environ.get("BENCH_PUSH_CLIENTS", "2"))
RATE = float(os.environ.get("BENCH_PUSH_RATE", "5"))
SECONDS = float(os.environ.get("BENCH_PUSH_SECONDS", "10"))
P99_BOUND_S = 1.0


P99_BOUND_S = 1.0
