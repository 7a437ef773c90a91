"""Random ids that must be unique but need not be secret: request ids, lock and lease tokens."""

from __future__ import annotations

import random


def unique_hex() -> str:
    """128 random bits as 32 hex digits, from this process's PRNG.

    uuid4() reads os.urandom, a system call per id, on hot paths (a request id, a cache lock
    token on every shared-cache read). Python reseeds ``random`` from the OS in every forked
    child, so no two gunicorn workers draw the same sequence.
    """
    return f"{random.getrandbits(128):032x}"
