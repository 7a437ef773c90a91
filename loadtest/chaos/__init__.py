"""`make chaos`: bounded load on a stack of its own while faults are injected, one at a time.

Scenarios: kill -9 of an API replica, a stopped DB replica, a stalled replica SQL thread, Redis
killed, the primary stopped and restarted, kill -9 of the primary's mariadbd, of the nginx master
and of supervisord (the last two healed by the launcher's `up`), the primary lost for good and
replaced by `make failover` (then back through `make up` and `make switchover`), a switchover and
back, and last, the same loss with semi-sync off, which may lose acknowledged writes. During each,
client threads on 127.0.0.1 write users (each acknowledged write is recorded with its content),
read them back with their consistency token (an older value is a stale read), and read other users.
Afterwards every acknowledged write is checked on the primary and, once caught up, on every
replica. Writes the stack refused (503 with Retry-After while the primary is down) are counted, not
lost: they were never acknowledged. The table goes to docs/reliability.md (CHAOS_REPORT=0 leaves it
alone; CHAOS_ONLY=text runs only the scenarios whose name holds it, and rewrites only the sections
all of whose rows ran). A failed read of a client's
own write is shown on stderr with the headers of the write and of the read.
"""
