"""What the load tools share: wrk runs and their medians (wrk.py), the machine's CPU by process
group (cpu.py), processes' memory (memory.py), nginx's access log since a point (accesslog.py),
waits for a server (waits.py), percentiles (stats.py) and the generated sections of the docs
(docs.py).

`make bench`, `make chaos`, `make bench-queue` and `make bench-push` (loadtest/bench/,
loadtest/chaos/, loadtest/bench_queue/, loadtest/bench_push/) are lists of scenarios on these.
"""
