"""`make bench`: the staircase from one server to the full stack, measured in one run against
the naive peer, the stack a user would build instead (loadtest/naive_peer.py).

Stages, each on the same read-heavy Zipf mix (loadtest/wrk/zipf_mix.lua) with wrk:

1. one API process (gunicorn, one sync worker), primary only, no cache, no load balancer;
2. + reads from the replicas;
3. + the Redis cache;
4. + nginx over the API replicas, each with its worker processes (past the edge cache: a query
   string on every GET, which the edge neither serves nor stores);
5. + nginx's edge cache: the running stack as `make up` has it;

and the naive peer on the same mix: nginx over one gunicorn with as many sync workers as the
stack has, Flask + SQLAlchemy's default pool, naive Redis cache-aside, the same data and replica.

Plus the floors and the hot path: nginx alone, the bare endpoint, a cached GET of hot ids (near
cache, then the edge), an uncached list read, and a random id over every seeded user (mostly
misses), each paired with the peer's same workload. Every row reports project / peer.
Each stage reports the best throughput whose p99 stays within BENCH_P99_MS, trying a few
connection counts; stages and hot-path runs repeat in BENCH_ROUNDS interleaved rounds, and each
reports its median, and the median of its per-round ratios to the peer. Every run also reports
the CPU the machine spent on it, wrk's own left out: how many cores were busy, and the CPU time
per request. Prints a table, writes docs/benchmarks.md, docs/capacity.md and imgs/staircase.png.
"""
