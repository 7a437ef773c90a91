"""The load generators on this machine, exempt from nginx's per-address limits while they run.

No address is exempt by default (NGINX_RATE_LIMIT_EXEMPT): behind another reverse proxy on the
same host, 127.0.0.1 would be every client. `make bench` and `make loadtest` measure capacity, not
the limiter, so for as long as they run they apply `make up` with 127.0.0.1 exempt (nginx takes the
new config with a HUP, dropping nothing), and afterwards `make up` with the setting as configured.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from stack.settings import REPO, Stack, load_stack

LOOPBACK = "127.0.0.1/32"


def launcher_up(overrides: dict[str, str]) -> None:
    """`make up` on the running stack, with OVERRIDES in its environment."""
    subprocess.run(
        [sys.executable, "-m", "stack", "up"],
        cwd=REPO,
        env={**os.environ, **overrides},
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def loopback_exempt(stack: Stack) -> Iterator[Stack]:
    """STACK with 127.0.0.1 exempt from nginx's per-address limits until the block ends."""
    configured = stack.env["NGINX_RATE_LIMIT_EXEMPT"]
    if configured == LOOPBACK:
        yield stack  # configured so already
        return
    print(f"nginx: exempting {LOOPBACK} from the per-address limits while this runs", flush=True)
    launcher_up({"NGINX_RATE_LIMIT_EXEMPT": LOOPBACK})
    try:
        yield load_stack()
    finally:
        launcher_up({"NGINX_RATE_LIMIT_EXEMPT": configured})
        print(f"nginx: {configured} exempt again, as configured")
