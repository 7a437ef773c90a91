"""The chaos clients: each writes users, reads its own write back with its token, and reads
others, tallying what it saw."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class Tally:
    """What the clients saw during one scenario."""

    requests: int = 0
    failed_reads: int = 0
    failed_writes: int = 0
    refused_writes: int = 0  # 503 + Retry-After: a clear "not done", never acknowledged
    # 503 + Retry-After to a read of the client's own write that only the (stopped) primary
    # holds yet: refusing beats answering with data older than the client's write.
    refused_own_reads: int = 0
    stale_reads: int = 0
    slowest_s: float = 0.0  # the longest any request took (a timeout counts as its 5 s)
    acknowledged: dict[int, str] = field(default_factory=dict)  # user id -> last acked name
    failures: dict[str, int] = field(default_factory=dict)  # what failed, for the report
    # The first few failed reads of the client's own write, with what the API said of them.
    evidence: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def keyed_session(api_key: str) -> requests.Session:
    """A session that sends API_KEY with every request."""
    session = requests.Session()
    session.headers["X-API-Key"] = api_key
    return session


def client(base: str, api_key: str, tally: Tally, stop: threading.Event) -> None:
    """Write, read back with the token, read others; until STOP. Each write carries an
    Idempotency-Key, as a careful client's does (a retry of it would be written once)."""
    session = keyed_session(api_key)
    while not stop.is_set():
        name = f"chaos-{random.getrandbits(40):x}"
        sent = time.monotonic()
        try:
            written = session.post(
                f"{base}/api/users",
                json={"name": name, "second_name": "C"},
                headers={"Idempotency-Key": name},
                timeout=5,
            )
        except requests.RequestException:
            written = None
        with tally.lock:
            tally.slowest_s = max(tally.slowest_s, time.monotonic() - sent)
            tally.requests += 1
            if written is not None and written.status_code == 201:
                tally.acknowledged[written.json()["id"]] = name
            elif (
                written is not None
                and written.status_code == 503
                and "Retry-After" in written.headers
            ):
                tally.refused_writes += 1
            else:
                tally.failed_writes += 1
                outcome = f"write: {written.status_code if written is not None else 'no answer'}"
                tally.failures[outcome] = tally.failures.get(outcome, 0) + 1
        if written is not None and written.status_code == 201:
            read_back(session, base, written, name, tally)
        time.sleep(0.02)


def read_back(session: requests.Session, base: str, written: Any, name: str, tally: Tally) -> None:
    """Read the client's own write with its token, and a random other user."""
    token = written.headers.get("X-Consistency-Token", "")
    user_id = written.json()["id"]
    with tally.lock:
        others = list(tally.acknowledged)
    reads = (
        ("own", f"/api/users/{user_id}", name),
        ("other", f"/api/users/{random.choice(others)}", None),
    )
    for kind, path, expect in reads:
        read: Any = "no answer"
        sent = time.monotonic()
        try:
            read = session.get(base + path, headers={"X-Consistency-Token": token}, timeout=5)
            ok, body = read.status_code == 200, read.json() if read.status_code == 200 else {}
            outcome = f"{kind} read: {read.status_code}"
        except requests.RequestException as error:
            ok, body, outcome = False, {}, f"{kind} read: {type(error).__name__}"
        refused = kind == "own" and not ok and outcome.endswith("503")
        with tally.lock:
            tally.slowest_s = max(tally.slowest_s, time.monotonic() - sent)
            tally.requests += 1
            tally.refused_own_reads += refused
            tally.failed_reads += not ok and not refused
            tally.stale_reads += bool(ok and expect is not None and body.get("name") != expect)
            if not ok and not refused:
                tally.failures[outcome] = tally.failures.get(outcome, 0) + 1
                if kind == "own" and len(tally.evidence) < EVIDENCE and not isinstance(read, str):
                    tally.evidence.append(evidence(user_id, written, read))


EVIDENCE = 5
SHOWN_HEADERS = ("X-Served-By", "X-DB-Node", "X-Cache", "X-Request-ID")


def evidence(user_id: int, written: Any, read: Any) -> str:
    """One line on a failed read of the client's own write: the write's and the read's headers."""

    def shown(response: Any) -> str:
        return " ".join(f"{h}={response.headers.get(h, '')}" for h in SHOWN_HEADERS)

    token = "token" if written.headers.get("X-Consistency-Token") else "no token"
    return (
        f"user {user_id}: written ({token}) {shown(written)}; read {read.status_code} {shown(read)}"
    )
