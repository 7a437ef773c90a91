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
# before its measured runs: the steady state of its caches, not their filling. Stage 3's new
# single server warms CACHE_TOMBSTONE_TTL_S longer (staircase.watch_s).
ZIPF_WARMUP_S = int(os.environ.get("BENCH_ZIPF_WARMUP_S", "30"))
# Before the first round, the full stack and the peer each serve the Zipf reads this long (in
# slices of STEADY_SLICE_S, the edge's share printed after each): the edge keeps a copy until a
# write purges it (EDGE_CACHE_TTL_S, 10 min, at most), so its steady state takes minutes of
# traffic to reach, not the 30 s that fill a 60-s Redis cache (docs/benchmarks.md).
STEADY_WARMUP_S = int(os.environ.get("BENCH_STEADY_WARMUP_S", "150"))
STEADY_SLICE_S = 30
# The staircase's workload (anonymous reads, as the edge and the caches serve them), and the
# same reads with 5% writes, run by stage 5 and the peer in each round.
READS_SCRIPT = "zipf_reads.lua"
MIX_SCRIPT = "zipf_mix.lua"
PEER_PORT = int(os.environ.get("BENCH_PEER_PORT", "8093"))
PEER_API_PORT = int(os.environ.get("BENCH_PEER_API_PORT", "8094"))
