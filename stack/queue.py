"""The message queue as the launcher sees it: wait until the JetStream cluster has elected its
leaders, and the queue's rows of `make status` (from the relays' and workers' /metrics).

Standard library only: the launcher runs before and beside the app's own venv packages. What
only a NATS client can ask (the nodes' state, through the system account), the venv's python
asks for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from typing import Any

from stack.account import Account
from stack.live import SAMPLE
from stack.programs import app_program, supervisor_env, supervisor_program
from stack.settings import REPO, NatsNode, Stack
from stack.ui import step, table
from stack.waiting import until

NATS_CONF = REPO / "nats" / "nats-server.conf"
# Settings every broker node reads as they are (.env.example).
NATS_SETTINGS = (
    "NATS_CLUSTER_NAME",
    "NATS_MAX_FILE_STORE",
    "NATS_RELAY_USER",
    "NATS_RELAY_PASSWORD",
    "NATS_WORKER_USER",
    "NATS_WORKER_PASSWORD",
    "NATS_READER_USER",
    "NATS_READER_PASSWORD",
    "NATS_ADMIN_USER",
    "NATS_ADMIN_PASSWORD",
    "NATS_ROUTE_USER",
    "NATS_ROUTE_PASSWORD",
    "NATS_SYSTEM_USER",
    "NATS_SYSTEM_PASSWORD",
)


def reports(stack: Stack, timeout_s: float = 2.0) -> dict[str, dict[str, Any]]:
    """Each answering node's JetStream report (what /jsz gave), by node name.

    The nodes have no HTTP monitor; they answer a request of the system account, which needs a
    NATS client: the venv's python asks (app/messaging/status.py) and prints the reports.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NATS_SERVERS": stack.nats_servers,
        "NATS_SYSTEM_USER": stack.env["NATS_SYSTEM_USER"],
        "NATS_SYSTEM_PASSWORD": stack.env["NATS_SYSTEM_PASSWORD"],
    }
    done = subprocess.run(
        [str(stack.venv / "bin" / "python"), "-m", "app.messaging.status", str(timeout_s)],
        cwd=REPO / "backend",
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s + 30,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"cannot ask the broker's state: {done.stderr.strip()[-500:]}")
    found: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return found


def stream_leader(report: dict[str, Any], stream: str) -> str:
    """The node leading STREAM in a /jsz REPORT ('' when none is known)."""
    for account in report.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail.get("name") == stream:
                return str((detail.get("cluster") or {}).get("leader") or "")
    return ""


def stream_leader_of(stack: Stack) -> str:
    """The node leading the events stream now (nats-N); SystemExit when none does."""
    for report in reports(stack).values():
        if leader := stream_leader(report, stack.env["EVENTS_STREAM"]):
            return leader
    raise SystemExit("the events stream has no leader")


def wait_for_broker(stack: Stack, timeout: float = 90) -> None:
    """Poll until every node answers, the cluster has a metadata leader and the events stream
    (defined by the relays at their start) a leader of its own."""
    stream, nodes = stack.env["EVENTS_STREAM"], len(stack.nats_nodes)
    last = ["no answer"]

    def leader() -> str:
        """The stream's leader once every node answers and the cluster has a metadata leader."""
        answering = list(reports(stack).values())
        leaders = {stream_leader(r, stream) for r in answering} - {""}
        meta = {str((r.get("meta_cluster") or {}).get("leader") or "") for r in answering}
        if len(answering) == nodes and meta - {""} and leaders:
            return leaders.pop()
        last[0] = f"{len(answering)}/{nodes} answering, stream leader: {leaders or 'none'}"
        return ""

    logs = stack.state / "logs"
    led_by = until(leader, timeout, f"the broker ready (see {logs})", 0.3, detail=lambda: last[0])
    step("broker", f"{nodes} node(s), stream {stream} led by {led_by}")


# What `make status` shows of each relay and each worker: metric name -> column.
RELAY_COLUMNS = {
    "relay_lease_held": "holds lease",
    "outbox_depth": "outbox depth",
    "outbox_oldest_unpublished_age_seconds": "oldest unpublished s",
    "relay_published_total": "published",
    "relay_publish_failures_total": "failed batches",
}
WORKER_COLUMNS = {
    "consumer_pending": "consumer lag",
    "consumer_ack_pending": "unacked",
    "worker_events_total": "handled",
    "worker_dead_lettered_total": "dead-lettered",
}


def scrape(stack: Stack, port: int, wanted: dict[str, str]) -> dict[str, float] | None:
    """The WANTED metrics of the process serving /metrics on PORT, summed over labels."""
    try:
        with urllib.request.urlopen(f"http://{stack.host}:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match["name"] in wanted:
            totals[match["name"]] = totals.get(match["name"], 0.0) + float(match["value"])
    return totals


def broker_table(stack: Stack, found: dict[str, dict[str, Any]]) -> str:
    """`make status`'s rows of the broker: each node, whether it answered (FOUND: reports()),
    the metadata leader it names, and the events stream's leader and last sequence."""
    stream = stack.env["EVENTS_STREAM"]
    rows: list[tuple[str, ...]] = [("broker node", "answers", "meta leader", "stream leader")]
    for node in stack.nats_nodes:
        report = found.get(node.name)
        if report is None:
            rows.append((node.name, "no", "", ""))
            continue
        meta = str((report.get("meta_cluster") or {}).get("leader") or "none")
        rows.append((node.name, "yes", meta, stream_leader(report, stream) or "none"))
    return table(rows)


def queue_table(stack: Stack) -> str:
    """A table of the relays and one of the workers, each row what the process reports."""
    ports = stack.queue_metrics_ports()
    tables = []
    for kind, columns in (("relay", RELAY_COLUMNS), ("worker", WORKER_COLUMNS)):
        rows: list[tuple[str, ...]] = [(kind, *columns.values())]
        for name in (n for n in ports if n.startswith(f"{kind}-")):
            found = scrape(stack, ports[name], columns)
            if found is None:
                rows.append((name, "unreachable", *("" for _ in range(len(columns) - 1))))
            else:
                rows.append((name, *(f"{found[m]:g}" if m in found else "-" for m in columns)))
        tables.append(table(rows))
    return "\n\n".join(tables)


def nats_env(stack: Stack, node: NatsNode) -> dict[str, str]:
    """The environment nats/nats-server.conf reads for NODE (NATS resolves $NAME from it)."""
    login = f"{stack.env['NATS_ROUTE_USER']}:{stack.env['NATS_ROUTE_PASSWORD']}"
    routes = ", ".join(
        f"nats-route://{login}@{stack.host}:{n.cluster_port}" for n in stack.nats_nodes
    )
    return {
        "NATS_SERVER_NAME": node.name,
        "NATS_HOST": stack.host,
        "NATS_CLIENT_PORT": str(node.client_port),
        "NATS_CLUSTER_PORT": str(node.cluster_port),
        "NATS_MONITOR_ADDRESS": "0",  # port 0: no monitor (nats/nats-server.conf)
        "NATS_PID_FILE": str(stack.state / "run" / f"{node.name}.pid"),
        "NATS_STORE_DIR": str(stack.state / "nats" / node.name),
        "NATS_ROUTES": f"[{routes}]",
        **{name: stack.env[name] for name in NATS_SETTINGS},
    }


def queue_programs(stack: Stack, account: Account | None) -> list[str]:
    """The broker's nodes, the relays and the workers (docs/messaging.md)."""
    state = stack.state
    programs = [
        supervisor_program(
            stack,
            node.name,
            # The pid file on the command line too: it names the state dir, so `make up` finds
            # a node whose supervisord was killed (processes.py).
            f"/usr/sbin/nats-server -c {NATS_CONF} --pid {state / 'run' / f'{node.name}.pid'}",
            account,
            environment=supervisor_env(nats_env(stack, node)),
            priority="10",
            # INT and TERM both shut nats-server down cleanly; after TERM it exits with status 1.
            stopsignal="INT",
            stopwaitsecs="30",
        )
        for node in stack.nats_nodes
    ]
    ports = stack.queue_metrics_ports()
    for name in [*stack.relays, *stack.workers]:
        relay = name.startswith("relay-")
        module = "app.processes.relay" if relay else "app.processes.worker"
        env = {
            **stack.api_env(),
            **stack.broker_login("RELAY" if relay else "WORKER"),
            "PROCESS_NAME": name,
            "METRICS_PORT": str(ports[name]),
            "PID_FILE": str(state / "run" / f"{name}.pid"),
        }
        programs.append(
            app_program(stack, name, module, account, env, priority="18", stopwaitsecs="15")
        )
    return programs
