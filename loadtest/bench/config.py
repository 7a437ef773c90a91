"""`make bench`'s settings (environment variables BENCH_*)."""

from __future__ import annotations

import os

P99_LIMIT_MS = float(os.environ.get("BENCH_P99_MS", "50"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "4,8,16,32").split(",")]
SINGLE_PORT = int(os.environ.get("BENCH_SINGLE_PORT", "8090"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# Worker processes of the stage 1-3 server: one API process, as in the book's single server.
SINGLE_WORKERS = os.environ.get("BENCH_SINGLE_WORKERS", "1")
# The hot user set of the cached-GET run: small enough that every worker's near cache holds it
# in the steady state, as it holds a popular profile (see docs/benchmarks.md).
HOT_USERS = os.environ.get("BENCH_HOT_USERS", "100")
WARMUP_S = int(os.environ.get("BENCH_WARMUP_S", "3"))
# Each stage of the Zipf staircase (and the peer) is warmed with the same traffic this long
# before its measured runs: the steady state of its caches, not their filling.
ZIPF_WARMUP_S = int(os.environ.get("BENCH_ZIPF_WARMUP_S", "30"))
PEER_PORT = int(os.environ.get("BENCH_PEER_PORT", "8093"))
PEER_API_PORT = int(os.environ.get("BENCH_PEER_API_PORT", "8094"))
