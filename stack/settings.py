"""Settings of a native stack: .env.example defaults, then .env, then the process environment."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Settings an API process never gets.
ADMIN_SECRETS = frozenset(
    {"MYSQL_ADMIN_USER", "MYSQL_ADMIN_PASSWORD", "MYSQL_REPL_USER", "MYSQL_REPL_PASSWORD"}
)
# nginx's own settings (rates, the edge cache, the stream caps), passed to its template as they are.
NGINX_SETTINGS = (
    "NGINX_ANON_RATE",
    "NGINX_ANON_BURST",
    "NGINX_ADDR_RATE",
    "NGINX_ADDR_BURST",
    "NGINX_RATE_LIMIT_EXEMPT",
    "NGINX_TLS",
    "NGINX_TLS_PORT",
    "NGINX_TLS_CERT",
    "NGINX_TLS_KEY",
    "EDGE_CACHE",
    "EDGE_CACHE_TTL_S",
    "EDGE_CACHE_MIN_USES",
    "EDGE_CACHE_MAX_SIZE",
    "EDGE_CACHE_KEYS_ZONE",
    "PUSH_STREAMS_PER_ADDRESS",
    "NGINX_STREAM_TIMEOUT_S",
    "NGINX_ANSWER_TIMEOUT_S",
)
# The broker's users by role (nats/nats-server.conf): a process gets its role's pair only.
BROKER_ROLES = ("RELAY", "WORKER", "READER", "ADMIN")
BROKER_SECRETS = frozenset(
    {"NATS_ROUTE_PASSWORD", *(f"NATS_{role}_PASSWORD" for role in BROKER_ROLES)}
)
# Settings of the servers that no Python process reads: the database servers' (an API asks the
# primary instead) and nginx's. They are kept out of the programs' environment, so that changing
# one does not make supervisord restart every API replica at once (which nginx would answer with
# 502s meanwhile): nginx re-reads its config instead.
# `make stage N` (stack/stages.py): the launcher's alone; no program's environment names the stage.
STAGE_SETTINGS = ("STAGE", "STAGE_PORT")
SERVER_ONLY = frozenset(
    {"MYSQL_SEMI_SYNC", "MYSQL_SEMI_SYNC_TIMEOUT_MS", *NGINX_SETTINGS, *STAGE_SETTINGS}
)
# Longest unix socket path (sun_path is 108 bytes, with the terminating NUL).
MAX_SOCKET_PATH = 107


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines of a dotenv file (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_env() -> dict[str, str]:
    """Every setting, with later sources overriding earlier ones."""
    env = read_env_file(REPO / ".env.example")
    env.update(read_env_file(REPO / ".env"))
    prefixes = ("APP_", "DB_", "CACHE_", "REPLICA_", "BREAKER_", "REDIS_", "READ_", "RYW_")
    env.update({k: v for k, v in os.environ.items() if k in env or k.startswith(prefixes)})
    return env


def searchable_by_all(path: Path) -> bool:
    """Whether any user may walk to PATH: every existing folder above it has o+x."""
    folders = [folder for folder in path.parents if folder.exists()]
    return all(folder.stat().st_mode & stat.S_IXOTH for folder in folders)


@dataclass(frozen=True)
class Node:
    """One server process of the stack."""

    name: str
    port: int


@dataclass(frozen=True)
class NatsNode:
    """One node of the NATS JetStream cluster: its client and cluster-route ports (no HTTP monitor:
    its state is asked through the system account, app/messaging/status.py)."""

    name: str
    client_port: int
    cluster_port: int


@dataclass(frozen=True)
class Stack:
    """The topology and paths of one stack instance, derived from its settings."""

    env: dict[str, str]

    @property
    def host(self) -> str:
        return self.env["BIND_HOST"]

    @property
    def state(self) -> Path:
        return (REPO / self.env["STACK_DIR"]).resolve()

    @property
    def venv(self) -> Path:
        return REPO / ".venv"

    @property
    def primary(self) -> Node:
        return Node("primary", int(self.env["MYSQL_PRIMARY_PORT"]))

    @property
    def replicas(self) -> list[Node]:
        ports = [int(p) for p in self.env["MYSQL_REPLICA_PORTS"].split(",") if p.strip()]
        count = int(self.env["REPLICAS"])
        if not 0 <= count <= len(ports):
            raise SystemExit(f"REPLICAS={count}: MYSQL_REPLICA_PORTS lists {len(ports)} port(s)")
        return [Node(f"replica-{i + 1}", port) for i, port in enumerate(ports[:count])]

    @property
    def databases(self) -> list[Node]:
        return [self.primary, *self.replicas]

    @property
    def topology_file(self) -> Path:
        """The record mysql/failover.sh keeps of which node is the primary after a failover."""
        return self.state / "mysql" / "topology.env"

    @property
    def writer(self) -> Node:
        """The node that takes writes now: the configured primary until a failover recorded
        another (mysql/failover.sh)."""
        recorded = ""
        if self.topology_file.is_file():
            for line in self.topology_file.read_text().splitlines():
                if line.startswith("PRIMARY="):
                    recorded = line.removeprefix("PRIMARY=")
        for node in self.databases:
            if recorded == f"{self.host}:{node.port}":
                return node
        return self.primary

    @property
    def apis(self) -> list[Node]:
        base = int(self.env["API_BASE_PORT"])
        return [Node(f"api-{i + 1}", base + i) for i in range(int(self.env["API_REPLICAS"]))]

    def api_tcp(self, api: Node) -> bool:
        """Does API replica API listen on its TCP port? Only without a unix socket, or when
        API_TCP_PORTS asks for it."""
        wanted = self.env.get("API_TCP_PORTS", "false").lower() == "true"
        return wanted or self.api_socket(api) is None

    def api_socket(self, api: Node) -> Path | None:
        """The unix socket nginx reaches API replica API on, or None to use its TCP port.

        nginx's workers run as an unprivileged user: the socket is used only where they can
        reach it (every existing folder above it searchable by all) and where its path fits in
        a socket address (108 bytes on Linux).
        """
        if self.env.get("API_UNIX_SOCKETS", "true").lower() != "true":
            return None
        path = self.state / "run" / f"{api.name}.sock"
        return path if len(str(path)) <= MAX_SOCKET_PATH and searchable_by_all(path) else None

    @property
    def nats_nodes(self) -> list[NatsNode]:
        """The JetStream cluster's nodes (nats-1, nats-2, ...): one per NATS_CLIENT_PORTS entry."""
        lists = [
            [int(p) for p in self.env[name].split(",") if p.strip()]
            for name in ("NATS_CLIENT_PORTS", "NATS_CLUSTER_PORTS")
        ]
        if len({len(ports) for ports in lists}) != 1 or not lists[0]:
            raise SystemExit("NATS_CLIENT_PORTS and NATS_CLUSTER_PORTS: as many ports each")
        return [
            NatsNode(f"nats-{i + 1}", client, cluster)
            for i, (client, cluster) in enumerate(zip(*lists, strict=True))
        ]

    @property
    def nats_servers(self) -> str:
        """Every node's client URL, comma-separated (NATS_SERVERS of the API, relay, workers)."""
        return ",".join(f"nats://{self.host}:{n.client_port}" for n in self.nats_nodes)

    @property
    def relays(self) -> list[str]:
        return [f"relay-{i + 1}" for i in range(int(self.env["RELAYS"]))]

    @property
    def workers(self) -> list[str]:
        return [f"worker-{i + 1}" for i in range(int(self.env["WORKERS"]))]

    @property
    def pushes(self) -> list[Node]:
        """The push processes (push-1, push-2, ...) on PUSH_BASE_PORT onwards."""
        base = int(self.env["PUSH_BASE_PORT"])
        return [Node(f"push-{i + 1}", base + i) for i in range(int(self.env["PUSH_REPLICAS"]))]

    def push_env(self) -> dict[str, str]:
        """What a push process needs: the broker and its own settings (no database, no Redis)."""
        names = ("APP_ENV", "LOG_LEVEL", "EVENTS_STREAM")
        own = {k: v for k, v in self.env.items() if k.startswith("PUSH_")}
        login = self.broker_login("READER")
        return {
            **{k: self.env[k] for k in names},
            **own,
            **login,
            "NATS_SERVERS": self.nats_servers,
        }

    def broker_login(self, role: str) -> dict[str, str]:
        """NATS_USER and NATS_PASSWORD of a process in ROLE (RELAY, WORKER or READER)."""
        return {
            "NATS_USER": self.env[f"NATS_{role}_USER"],
            "NATS_PASSWORD": self.env[f"NATS_{role}_PASSWORD"],
        }

    def queue_metrics_ports(self) -> dict[str, int]:
        """Each relay's and worker's metrics port (RELAY_ / WORKER_METRICS_BASE_PORT onwards)."""
        relay, worker = (int(self.env[f"{kind}_METRICS_BASE_PORT"]) for kind in ("RELAY", "WORKER"))
        ports = {name: relay + i for i, name in enumerate(self.relays)}
        return ports | {name: worker + i for i, name in enumerate(self.workers)}

    @property
    def nginx_port(self) -> int:
        return int(self.env["NGINX_PORT"])

    @property
    def nginx_internal_port(self) -> int:
        return int(self.env["NGINX_INTERNAL_PORT"])

    @property
    def nginx_tls_ports(self) -> list[int]:
        """The HTTPS listener's port, when NGINX_TLS=on."""
        return [int(self.env["NGINX_TLS_PORT"])] if self.env["NGINX_TLS"] == "on" else []

    @property
    def internal_url(self) -> str:
        """nginx's internal listener: /readyz and /metrics (loopback only)."""
        return f"http://{self.host}:{self.nginx_internal_port}"

    @property
    def redis_port(self) -> int:
        return int(self.env["REDIS_PORT"])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.nginx_port}"

    def replication_env(self) -> dict[str, str]:
        """Environment for the scripts in mysql/ (setup-replication.sh, repl-status.sh)."""
        return {
            **os.environ,
            **self.env,
            "MYSQL_PRIMARY_HOST": self.host,
            "MYSQL_PRIMARY_PORT": str(self.primary.port),
            "MYSQL_REPLICAS": ",".join(f"{self.host}:{r.port}" for r in self.replicas),
            "MYSQL_TOPOLOGY_FILE": str(self.topology_file),
        }

    def api_env(self) -> dict[str, str]:
        """What an API process needs: every setting but the admin and replication secrets."""
        withheld = ADMIN_SECRETS | SERVER_ONLY | BROKER_SECRETS | {"NATS_USER", "NATS_PASSWORD"}
        shared = {k: v for k, v in self.env.items() if k not in withheld}
        return {
            **shared,
            "DB_PRIMARY": f"{self.host}:{self.primary.port}",
            "DB_REPLICAS": ",".join(f"{self.host}:{r.port}" for r in self.replicas),
            "REDIS_URL": f"redis://{self.host}:{self.redis_port}/0",
            "RATE_LIMIT_LOCAL_SHARE": str(len(self.apis) * int(self.env["GUNICORN_WORKERS"])),
            "NATS_SERVERS": self.nats_servers,
        }


def load_stack() -> Stack:
    """The stack described by the current settings."""
    return Stack(load_env())
