"""Other accounts on the same host: they can neither join the broker's cluster nor log in with
the public example secrets of .env.example, nor forge a consistency token (docs/security.md)."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import nats
import pymysql
import pytest
import redis
from itsdangerous import URLSafeTimedSerializer
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from stack import processes, queue
from stack.settings import REPO, Stack, read_env_file
from tests.integration.helpers import Api, Databases

pytestmark = pytest.mark.integration
EXAMPLE = read_env_file(REPO / ".env.example")


def meta_group_size(stack: Stack) -> int:
    """The size of JetStream's meta group as the first node reports it."""
    return int(queue.reports(stack)["nats-1"]["meta_cluster"]["cluster_size"])


def rogue_node(stack: Stack, attempt: int, store: Path) -> str:
    """A nats-server run as `nobody` that asks to join the cluster with JetStream on; its log."""
    command = (
        f"timeout 2 nats-server -a 127.0.0.1 -p {24990 + attempt} -n rogue-{attempt} "
        f"--cluster_name {stack.env['NATS_CLUSTER_NAME']} "
        f"--cluster nats://127.0.0.1:{25990 + attempt} "
        f"--routes nats://127.0.0.1:{stack.nats_nodes[0].cluster_port} -js -sd {store}"
    )
    result = subprocess.run(
        ["runuser", "-u", "nobody", "--", "bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=15,
    )
    return result.stdout + result.stderr


def test_a_rogue_broker_node_of_another_account_cannot_join_the_cluster(stack: Stack) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder).chmod(0o777)
        for attempt in range(3):
            log = rogue_node(stack, attempt, Path(folder) / str(attempt))
            assert "Authorization Violation" in log, log[-2000:]
    assert meta_group_size(stack) == 3


def test_no_server_accepts_the_example_passwords(stack: Stack) -> None:
    for name in ("MYSQL_ADMIN_PASSWORD", "MYSQL_APP_PASSWORD", "MYSQL_REPL_PASSWORD"):
        assert stack.env[name] != EXAMPLE[name]
    accounts = [
        (stack.env["MYSQL_ADMIN_USER"], EXAMPLE["MYSQL_ADMIN_PASSWORD"]),
        (stack.env["MYSQL_APP_USER"], EXAMPLE["MYSQL_APP_PASSWORD"]),
        (stack.env["MYSQL_REPL_USER"], EXAMPLE["MYSQL_REPL_PASSWORD"]),
    ]
    for node in stack.databases:
        for user, password in accounts:
            with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
                pymysql.connect(
                    host=stack.host, port=node.port, user=user, password=password, ssl_disabled=True
                )
    example_redis = redis.Redis(
        host=stack.host, port=stack.redis_port, password=EXAMPLE["REDIS_PASSWORD"]
    )
    with pytest.raises(redis.AuthenticationError):
        example_redis.ping()

    for role in ("RELAY", "WORKER", "READER", "SYSTEM"):
        user, password = stack.env[f"NATS_{role}_USER"], EXAMPLE[f"NATS_{role}_PASSWORD"]
        with pytest.raises(Exception, match=r"[Aa]uthorization"):
            asyncio.run(broker_login(stack, user, password))


async def broker_login(stack: Stack, user: str, password: str) -> Client:
    return await nats.connect(
        f"nats://{stack.host}:{stack.nats_nodes[0].client_port}",
        user=user,
        password=password,
        allow_reconnect=False,
        max_reconnect_attempts=0,
        connect_timeout=2,
    )


def test_the_broker_nodes_listen_on_their_client_and_route_ports_only(stack: Stack) -> None:
    """No HTTP monitor: it would answer /connz, /routez and /accountz to any local account."""
    nodes = [processes.read_pid(stack.state / "run" / f"{n.name}.pid") for n in stack.nats_nodes]
    assert None not in nodes
    owners = processes.socket_owners([pid for pid in nodes if pid is not None])
    every_port = set(range(1, 65536))
    held = {
        port for port, inodes in processes.listeners(every_port).items() if inodes & owners.keys()
    }
    assert held == {p for n in stack.nats_nodes for p in (n.client_port, n.cluster_port)}


async def answer_as(stack: Stack, role: str, subject: str, payload: bytes) -> Any:
    """The answer to a request on SUBJECT sent as the broker's user of ROLE."""
    login = stack.broker_login(role)
    client = await broker_login(stack, login["NATS_USER"], login["NATS_PASSWORD"])
    try:
        return await client.request(subject, payload, timeout=1)
    finally:
        await client.close()


def test_the_nodes_state_is_the_system_accounts_alone(stack: Stack) -> None:
    """/readyz and the launcher ask each node's JetStream report through the system account; no
    client user gets an answer to the same request."""
    assert set(queue.reports(stack)) == {n.name for n in stack.nats_nodes}
    for role in ("RELAY", "WORKER", "READER"):
        with pytest.raises((NoRespondersError, NatsTimeout)):
            asyncio.run(answer_as(stack, role, "$SYS.REQ.SERVER.PING.JSZ", b"{}"))


def test_only_the_relays_user_may_publish_an_event_or_define_a_stream(stack: Stack) -> None:
    """A worker, push process or edge purger (or whoever reads its environment) cannot inject an
    event the workers would apply, nor change the stream (for example, to source its messages
    from a stream it may write): the broker refuses the publish, and the request goes unanswered.
    (That the relays' user may publish, every test of the queue shows.)"""
    forged = b'{"forged": true}'
    stream = f"$JS.API.STREAM.UPDATE.{stack.env['EVENTS_STREAM']}"
    for role in ("WORKER", "READER"):
        with pytest.raises(NatsTimeout):
            asyncio.run(answer_as(stack, role, "events.post.created", forged))
        with pytest.raises(NatsTimeout):
            asyncio.run(answer_as(stack, role, stream, b"{}"))


def test_root_answers_on_a_nodes_own_socket_only(stack: Stack, dbs: Databases) -> None:
    """Over TCP root is no account at all, even with the admin password: the admin account is
    MYSQL_ADMIN_USER, and a root@'%' an older stack had is dropped by make up."""
    for node in stack.databases:
        assert (
            dbs.scalar(
                node.name,
                "SELECT COUNT(*) FROM mysql.user WHERE user = %s AND host = %s",
                "root",
                "%",
            )
            == 0
        )
        with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
            pymysql.connect(
                host=stack.host,
                port=node.port,
                user="root",
                password=stack.env["MYSQL_ADMIN_PASSWORD"],
                ssl_disabled=True,
            )
        assert (
            dbs.scalar(node.name, "SELECT CURRENT_USER()") == f"{stack.env['MYSQL_ADMIN_USER']}@%"
        )


def test_a_token_signed_with_the_example_key_is_refused(stack: Stack, api: Api) -> None:
    user = api.create_user()
    forged = URLSafeTimedSerializer(EXAMPLE["APP_SECRET_KEY"], salt="consistency-token").dumps(
        ["0-1-1", 1]
    )
    response = api.get(f"/api/users/{user['id']}", headers={"X-Consistency-Token": forged})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "not a valid token" in response.json()["detail"]
