"""`make bench`: the staircase from one server to the full stack, measured in one run against
the naive peer, the stack a user would build instead (loadtest/naive_peer.py).

First the steady state: the full stack and the peer each serve the Zipf reads for
BENCH_STEADY_WARMUP_S (the edge keeps a copy until a write purges it, so what it holds grows for
minutes). Then the stages, each on the same Zipf reads (loadtest/wrk/zipf_reads.lua: anonymous
GETs of a user and of their first page of posts, ids drawn log-uniformly) with wrk:

1. one API process (gunicorn, one sync worker), primary only, no cache, no load balancer;
2. + reads from the replicas;
3. + the Redis cache;
4. + nginx over the API replicas, each with its worker processes (past the edge cache: a query
   string on every GET, which the edge neither serves nor stores);
5. + nginx's edge cache: the running stack as `make up` has it;

and the naive peer on the same reads: nginx over one gunicorn with as many sync workers as the
stack has, Flask + SQLAlchemy's default pool, naive Redis cache-aside, the same data and replica.

In each round, stage 5 and the peer also run the Zipf mix (loadtest/wrk/zipf_mix.lua: the same
reads with 5% PATCHes): what writes cost each, and the capacity docs/capacity.md reports.

Plus the floors and the hot path: nginx alone, the bare endpoint, a cached GET of hot ids (near
cache, then the edge), an uncached list read, and a random id over every seeded user (mostly
misses), each paired with the peer's same workload. Every row reports project / peer.
Each stage reports the best throughput whose p99 stays within BENCH_P99_MS, trying a few
connection counts; stages and hot-path runs repeat in BENCH_ROUNDS interleaved rounds, and each
reports its median, and the median of its per-round ratios to the peer. Every run also reports
the CPU the machine spent on it, wrk's own left out: how many cores were busy, and the CPU time
per request. Prints a table, writes docs/benchmarks.md, docs/capacity.md and imgs/staircase.png.
"""
