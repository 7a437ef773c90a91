"""`make bench-push`: how many live streams one push process holds, what each costs, and how fast
a new post reaches them, measured on the running stack (`make up` first; 127.0.0.1 only).

For each number of streams C in BENCH_PUSH_STREAMS (a ladder), the bench

1. opens C streams straight to push-1 (its own port: one process is what is measured), from
   BENCH_PUSH_CLIENTS client processes of its own (asyncio, plain sockets);
2. reads push-1's memory (its worker's RSS) before and after: memory per open stream;
3. writes posts through nginx and the API at BENCH_PUSH_RATE per second for BENCH_PUSH_SECONDS,
   one after another, while every client notes when each post arrives: the delivery latency is
   arrival minus the post's created_at (its commit on the primary, the same machine's clock),
   the whole path: API, outbox, relay, the 3-copy stream, the push process's ordered consumer,
   its fan-out, the socket;
4. closes the streams.

The most streams one process holds on this machine is the largest C whose p99 stays under 1 s.
Prints a table, writes a section of docs/benchmarks.md and imgs/push-bench.png.
"""
