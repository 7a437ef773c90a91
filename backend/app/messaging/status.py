"""What /readyz says of the broker, asked of the nodes through the system account: the cluster's
size and leader, the events stream's leader and copies, the consumer's lag, and the dead letters.
Cached for BROKER_CHECK_INTERVAL_S.

The nodes have no HTTP monitor (natively it would answer /connz, /routez and /accountz to every
local account). Instead each node answers a JetStream report (what /jsz gave) on
`$SYS.REQ.SERVER.PING.JSZ`, which only a user of the system account may send; one request
gathers every node's. `python -m app.messaging.status` prints them (the launcher, which runs on
the standard library only, and `make status` read them so).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from typing import Any

import nats
from nats.errors import Error as NatsError

Report = dict[str, Any]
TIMEOUT_S = 0.5
JSZ_SUBJECT = "$SYS.REQ.SERVER.PING.JSZ"
# The server's JSON names of /jsz's accounts, streams and consumers options ("consumer", singular:
# with "consumers" the reports come without their consumers).
JSZ_OPTIONS = json.dumps({"accounts": True, "streams": True, "consumer": True}).encode()


async def gather(
    servers: tuple[str, ...], user: str, password: str, timeout_s: float
) -> dict[str, Report]:
    """Each answering node's JetStream report, by server name, within TIMEOUT_S."""
    deadline = time.monotonic() + timeout_s
    try:
        client = await nats.connect(
            servers=list(servers),
            user=user,
            password=password,
            name="broker-status",
            connect_timeout=timeout_s,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
    except (TimeoutError, NatsError, OSError):
        return {}
    reports: dict[str, Report] = {}
    try:
        inbox = client.new_inbox()
        answers = await client.subscribe(inbox)
        await client.publish(JSZ_SUBJECT, JSZ_OPTIONS, reply=inbox)
        while len(reports) < len(servers) and (left := deadline - time.monotonic()) > 0:
            message = await answers.next_msg(timeout=left)
            answer = json.loads(message.data)
            if isinstance(answer.get("data"), dict):
                reports[str(answer["server"]["name"])] = answer["data"]
    except (TimeoutError, NatsError, OSError, ValueError, KeyError):
        pass  # the nodes that answered in time
    finally:
        await client.close()
    return reports


def fetch(
    servers: tuple[str, ...], user: str, password: str, timeout_s: float = TIMEOUT_S
) -> list[Report | None]:
    """One report per node (None: did not answer), for a caller without an event loop."""
    reports = list[Report | None](asyncio.run(gather(servers, user, password, timeout_s)).values())
    return reports + [None] * (len(servers) - len(reports))


def streams(report: Report) -> dict[str, Report]:
    """The stream details of a /jsz report, by name."""
    return {
        detail.get("name", ""): detail
        for account in report.get("account_details") or []
        for detail in account.get("stream_detail") or []
    }


def summarize(reports: list[Report | None], stream: str, consumer: str, dead: str) -> Report:
    """The broker check from each node's report (None: did not answer)."""
    answering = [r for r in reports if r is not None]
    if not answering:
        return {"status": "down", "nodes": len(reports), "answering": 0}
    meta: Report = next((r["meta_cluster"] for r in answering if r.get("meta_cluster")), {})
    details = [streams(r) for r in answering]
    events = [d[stream] for d in details if stream in d]
    leader = next(
        (e["cluster"]["leader"] for e in events if e.get("cluster", {}).get("leader")), ""
    )
    # Followers learn the consumer's progress a moment after its leader: the most advanced
    # report is the freshest.
    consumers = [
        c for e in events for c in e.get("consumer_detail") or [] if c.get("name") == consumer
    ]
    freshest = max(consumers, key=lambda c: c["delivered"]["stream_seq"], default=None)
    dead_letters = max((d[dead]["state"]["messages"] for d in details if dead in d), default=0)
    status = "ok"
    if not meta.get("leader") or not leader:
        status = "no_leader"
    elif len(answering) < len(reports):
        status = "partial"
    return {
        "status": status,
        "nodes": len(reports),
        "answering": len(answering),
        "cluster_size": meta.get("cluster_size"),
        "meta_leader": meta.get("leader", ""),
        "stream": {
            "name": stream,
            "leader": leader,
            "messages": max((e["state"]["messages"] for e in events), default=0),
            "last_seq": max((e["state"]["last_seq"] for e in events), default=0),
        },
        "consumer": {
            "name": consumer,
            "pending": freshest.get("num_pending", 0) if freshest else None,
            "ack_pending": freshest.get("num_ack_pending", 0) if freshest else None,
            "redelivered": freshest.get("num_redelivered", 0) if freshest else None,
        },
        "dead_letters": dead_letters,
        "edge": edge_purgers(events),
    }


# The edge purgers' durable consumers are purger-<EDGE_ID> (app/edge/config.py).
PURGER_PREFIX = "purger-"
# A purger this far behind the stream has put its edge aside (it serves no copy until caught up).
PURGER_BEHIND = 100


def edge_purgers(events: list[Report]) -> Report:
    """Each edge purger's position: how many events it has not yet seen or finished. While one is
    behind, its nginx serves no edge copy (every read goes to the API): degraded, not down."""
    freshest: dict[str, Report] = {}
    for detail in (c for e in events for c in e.get("consumer_detail") or []):
        name = detail.get("name", "")
        seen = freshest.get(name, {}).get("delivered", {}).get("stream_seq", -1)
        if name.startswith(PURGER_PREFIX) and detail["delivered"]["stream_seq"] >= seen:
            freshest[name] = detail
    purgers = {
        name: {"pending": d.get("num_pending", 0), "unfinished": d.get("num_ack_pending", 0)}
        for name, d in sorted(freshest.items())
    }
    behind = sorted(n for n, p in purgers.items() if p["pending"] > PURGER_BEHIND)
    status = "no_purger" if not purgers else ("behind" if behind else "ok")
    return {"status": status, "purgers": purgers}


class BrokerStatus:
    """The broker check, read at most once per INTERVAL_S by this process."""

    def __init__(
        self,
        login: tuple[tuple[str, ...], str, str],
        stream: str,
        consumer: str,
        dead: str,
        interval_s: float,
    ) -> None:
        """LOGIN: the nodes' client URLs, and the system account's user and password."""
        self.login, self.stream, self.consumer, self.dead = login, stream, consumer, dead
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._cached: tuple[float, Report] | None = None

    def check(self) -> Report:
        """The broker's state now (or at most INTERVAL_S ago)."""
        with self._lock:
            now = time.monotonic()
            if self._cached and now - self._cached[0] < self.interval_s:
                return self._cached[1]
            report = summarize(fetch(*self.login), self.stream, self.consumer, self.dead)
            self._cached = (now, report)
            return report


def main() -> None:
    """Print every node's report, by name, as JSON (from NATS_SERVERS, NATS_SYSTEM_USER and
    NATS_SYSTEM_PASSWORD; a node that did not answer within TIMEOUT_S, argv[1], is left out)."""
    servers = tuple(u for u in os.environ["NATS_SERVERS"].split(",") if u)
    timeout_s = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    login = (os.environ["NATS_SYSTEM_USER"], os.environ["NATS_SYSTEM_PASSWORD"])
    json.dump(asyncio.run(gather(servers, *login, timeout_s)), sys.stdout)


if __name__ == "__main__":
    main()
