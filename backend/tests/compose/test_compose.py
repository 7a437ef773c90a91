"""`docker compose up` end to end: black-box checks through nginx and the published database ports,
then the faults of `make compose-chaos` under load. Runs on a real engine (see conftest.py)."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pymysql
import pytest
import requests

from loadtest.chaos.compose import containers, inspect, run
from loadtest.chaos.report import verdict
from stack.compose import Project, compose
from stack.settings import Stack
from stack.waiting import until
from tests.integration.helpers import Api, Databases, eventually
from tests.integration.streams import Listener

pytestmark = pytest.mark.compose


def test_the_stack_is_ready_through_nginx(api: Api) -> None:
    response = api.readyz()
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "primary": "ok",
        "replica-1": "ok",
        "heartbeat": "ok",
        "redis": "ok",
        "broker": "ok",
        "edge": "ok",
    }


def version(output: subprocess.CompletedProcess[str], pattern: str) -> str:
    """The part of a --version output that PATTERN matches."""
    match = re.search(pattern, output.stdout + output.stderr)
    assert match, output.stdout + output.stderr
    return match.group(0)


@pytest.mark.parametrize(
    ("service", "command", "native", "pattern"),
    [
        ("mysql-primary", "mariadbd", "/usr/sbin/mariadbd", r"\d+\.\d+\.\d+-MariaDB\S*"),
        ("redis", "redis-server", "/usr/bin/redis-server", r"v=\d+\.\d+\.\d+"),
        ("nginx", "nginx", "/usr/sbin/nginx", r"nginx/\d+\.\d+\.\d+"),
        ("nats-1", "nats-server", "/usr/sbin/nats-server", r"v\d+\.\d+\.\d+"),
        # The native venv is made by whichever python3 the machine has: the same minor version.
        ("api", "python3", "python3", r"Python 3\.\d+"),
    ],
    ids=["mariadb", "redis", "nginx", "nats", "python"],
)
def test_each_image_runs_the_same_server_version_as_the_native_stack(
    project: Project, service: str, command: str, native: str, pattern: str
) -> None:
    flag = "-v" if command == "nginx" else "--version"
    inside = compose(project, "exec", "-T", service, command, flag, capture=True)
    here = subprocess.run([native, flag], capture_output=True, text=True, check=False)
    assert version(inside, pattern) == version(here, pattern)


@pytest.mark.parametrize(
    "service",
    [
        "mysql-primary",
        "mysql-replica",
        "redis",
        "nginx",
        "api",
        "nats-1",
        "relay",
        "worker",
        "push-1",
        "edge-purger",
    ],
)
def test_no_server_runs_as_root(project: Project, service: str) -> None:
    uid = compose(project, "exec", "-T", service, "id", "-u", capture=True).stdout.strip()
    assert uid not in {"", "0"}


def test_a_write_is_read_back_from_the_replica_with_the_same_data(api: Api, dbs: Databases) -> None:
    created = api.create_user("Grace", "Hopper")
    dbs.wait_replicated()

    def read_from_replica() -> bool:
        # The list is not cached, so every read names the node that served it.
        response = api.get(f"/api/users?limit=1&after={created['id'] - 1}")
        return response.headers["X-DB-Node"] == "replica-1" and response.json()["items"] == [
            created
        ]

    eventually(read_from_replica)


def test_the_queue_workers_count_posts_through_the_broker(api: Api) -> None:
    user = api.create_user("Queued", "Compose")
    for i in range(3):
        assert api.post(f"/api/users/{user['id']}/posts", json={"body": f"q{i}"}).status_code == 201
    # The outbox row goes through the relay, the 3-node stream and a worker back to the user.
    eventually(lambda: api.get(f"/api/users/{user['id']}").json()["post_count"] == 3, 30)


def test_a_new_post_arrives_on_the_live_stream_and_the_live_page_is_served(api: Api) -> None:
    page = requests.get(f"{api.base_url}/live", timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "new EventSource(" in page.text
    user = api.create_user("Live", "Compose")
    listener = Listener(f"{api.base_url}/api/stream/posts").start()
    try:
        assert listener.connected.wait(10), listener.refused
        assert listener.served_by[0] in {"push-1", "push-2"}
        answer = api.post(f"/api/users/{user['id']}/posts", json={"body": "pushed"})
        assert answer.status_code == 201
        # The outbox row goes through the relay and the stream to a push process, then here.
        eventually(lambda: [e.data["id"] for e in listener.posts] == [answer.json()["id"]], 30)
    finally:
        listener.close()


def test_a_second_read_is_a_cache_hit(api: Api) -> None:
    user = api.create_user("Cache", "Me")
    first = api.get(f"/api/users/{user['id']}")
    second = api.get(f"/api/users/{user['id']}")
    assert (first.headers["X-Cache"], first.json()) == ("MISS", user)
    assert (second.headers["X-Cache"], second.headers["X-DB-Node"]) == ("HIT", "none")


def edge_read(url: str, **headers: str) -> requests.Response:
    """The first anonymous read of URL the edge answers (a copy just purged is refilled)."""

    def edge() -> requests.Response | None:
        response = requests.get(url, headers=headers, timeout=10)
        return response if response.headers.get("X-Cache") == "EDGE" else None

    found = until(edge, 15, f"an edge answer for {url}", interval=0.02)
    assert found is not None
    return found


def test_the_edge_keeps_an_anonymous_read_until_a_patch_purges_it(api: Api) -> None:
    user = api.create_user("Edge", "Compose")
    url = f"{api.base_url}/api/users/{user['id']}"
    second = edge_read(url, **{"X-Request-ID": "compose-edge"})
    assert second.json() == user
    assert (second.headers["X-Cache"], second.headers["X-DB-Node"]) == ("EDGE", "none")
    assert second.headers["X-Request-ID"] == "compose-edge"
    assert api.patch(f"/api/users/{user['id']}", json={"name": "Purged"}).status_code == 200
    # The edge purger (its own container, on nginx's cache volume) drops the copy: the new name
    # comes back, and then from the edge again.
    until(lambda: requests.get(url, timeout=10).json()["name"] == "Purged", 5, "the purged copy")
    assert edge_read(url).json()["name"] == "Purged"


def api_hostnames(project: Project) -> set[str]:
    return {inspect(c, "{{.Config.Hostname}}") for c in containers(project, "api")}


def test_reads_are_spread_over_every_api_container(api: Api, project: Project) -> None:
    served_by = {api.get("/api/users?limit=1").headers["X-Served-By"] for _ in range(30)}
    assert served_by == api_hostnames(project)
    assert len(served_by) == 3


def test_the_replica_replicates_with_gtid(dbs: Databases) -> None:
    conn = dbs.connect("replica-1")
    with conn.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute("SHOW REPLICA STATUS")
        status = cursor.fetchone()
    assert status is not None
    assert (status["Slave_IO_Running"], status["Slave_SQL_Running"]) == ("Yes", "Yes")
    assert status["Using_Gtid"] == "Slave_Pos"


def test_the_app_user_is_refused_a_write_on_the_replica(dbs: Databases) -> None:
    conn = dbs.connect("replica-1", as_app=True)
    with pytest.raises(pymysql.err.OperationalError) as refused, conn.cursor() as cursor:
        cursor.execute("INSERT INTO users (name, second_name) VALUES ('Not', 'Here')")
    assert refused.value.args[0] == 1290  # ER_OPTION_PREVENTS_STATEMENT: --read-only


@pytest.fixture(scope="module")
def fault_rows(project: Project, api_key: str) -> list[dict[str, Any]]:
    """The compose faults under a bounded write + read load, one row each."""
    return run(project, api_key, fault_s=6)


def test_a_crashed_api_container_is_restarted_and_loses_no_acknowledged_write(
    fault_rows: list[dict[str, Any]], api: Api, project: Project
) -> None:
    crash = fault_rows[0]
    assert crash["acknowledged writes"] > 0
    assert (crash["lost writes"], crash["stale reads"], crash["failed reads"]) == (0, 0, 0), crash
    assert crash["restarted by policy"]
    assert verdict(crash), crash
    # nginx follows the restarted container: all three serve again.
    eventually(
        lambda: (
            {api.get("/api/users?limit=1").headers["X-Served-By"] for _ in range(30)}
            == api_hostnames(project)
        ),
        timeout=20,
    )


def test_reads_move_to_the_primary_while_the_replica_is_stopped_then_back(
    fault_rows: list[dict[str, Any]], api: Api, stack: Stack
) -> None:
    stopped = fault_rows[1]
    assert stopped["acknowledged writes"] > 0
    assert (stopped["lost writes"], stopped["stale reads"], stopped["failed reads"]) == (0, 0, 0), (
        stopped
    )
    assert verdict(stopped), stopped
    eventually(
        lambda: api.get("/api/users?limit=1").headers["X-DB-Node"] == "replica-1", timeout=30
    )
