"""`make bench-queue`: what each acknowledgement level costs and what it keeps, measured in one run.

The levels are the notes' Kafka ack levels on NATS JetStream (docs/messaging.md):

* **core** (acks=0): a core NATS publish into a subject a one-copy stream captures; no ack at all.
* **R1** (acks=1): a JetStream publish to a stream with one copy; acked once its leader stored it.
* **R3** (acks=all): a JetStream publish to a stream with three copies; acked once two stored it.

The bench starts a 3-node cluster of its own from nats/nats-server.conf on 127.0.0.1
(BENCH_NATS_BASE_PORT onwards, data under .stack-bench-queue/), and, per level, in
BENCH_ROUNDS interleaved rounds:

1. **throughput**: BENCH_QUEUE_MESSAGES messages of 200 bytes, pipelined
   (BENCH_QUEUE_WINDOW in flight; core: published, then one flush);
2. **latency**: BENCH_QUEUE_SAMPLES publishes one after another, publish to ack (core: to the
   flush's round trip, the moment the server has it);
3. **loss**: a publisher sends for BENCH_QUEUE_FAULT_S seconds, one message after another; in the
   middle the node leading the level's stream is killed with SIGKILL and, once the run is over,
   started again, first with its disk, then (a second run) with its disk lost. Counted: messages
   acknowledged (core: sent) and how many of those the stream does not hold afterwards.

Prints a table, writes a section of docs/benchmarks.md and imgs/queue-ack-levels.png. Everything
it started is stopped at the end; traffic goes to 127.0.0.1 only.
"""
