"""Helpers for integration tests: direct SQL on each node, polling with a deadline, and client
threads under load."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Self, TypeVar

import pymysql
import requests

from app.gtid import covers
from stack import apihttp
from stack.settings import Node, Stack

T = TypeVar("T")


class Clients:
    """A load of client threads (what clients() returns): started on entering, told to stop
    (self.stop) and joined on leaving."""

    stop: threading.Event

    def clients(self) -> list[threading.Thread]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.threads = self.clients()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def eventually(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Call CHECK until it returns a truthy value or raises nothing falsy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last  # type: ignore[no-any-return]
        except AssertionError as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last: {last!r}")


class Databases:
    """Direct connections to the test stack's MariaDB nodes, as admin or as the app user."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def node(self, name: str) -> Node:
        return next(db for db in self.stack.databases if db.name == name)

    def connect(self, name: str, *, as_app: bool = False) -> pymysql.Connection[Any]:
        env = self.stack.env
        user, password = (
            (env["MYSQL_APP_USER"], env["MYSQL_APP_PASSWORD"])
            if as_app
            else (env["MYSQL_ADMIN_USER"], env["MYSQL_ADMIN_PASSWORD"])
        )
        return pymysql.connect(
            host=self.stack.host,
            port=self.node(name).port,
            user=user,
            password=password,
            database=env["MYSQL_DATABASE"],
            autocommit=True,
            connect_timeout=3,
            ssl_disabled=True,  # the stack's nodes have no TLS; PyMySQL would try it
        )

    def query(self, name: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = self.connect(name)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def scalar(self, name: str, sql: str, *args: Any) -> Any:
        rows = self.query(name, sql, *args)
        return rows[0][0] if rows else None

    def primary_gtid(self) -> str:
        return str(self.scalar("primary", "SELECT @@gtid_binlog_pos"))

    def data_checksum(self) -> list[tuple[Any, ...]]:
        """Checksums of the app's data tables on the primary (the heartbeat moves the GTID)."""
        return self.query("primary", "CHECKSUM TABLE users, posts")

    def accounts_checksum(self, node: str) -> list[tuple[Any, ...]]:
        """Checksums of the account and grant tables of NODE."""
        return self.query(node, "CHECKSUM TABLE mysql.global_priv, mysql.db")

    def wait_replicated(self, timeout: float = 10.0) -> None:
        """Wait until every replica has applied everything the primary has written."""
        target = self.primary_gtid()
        for replica in self.stack.replicas:
            eventually(partial(self.has_applied, replica.name, target), timeout)

    def has_applied(self, name: str, position: str, variable: str = "gtid_slave_pos") -> bool:
        """Node NAME has applied every transaction of POSITION, by its VARIABLE
        (gtid_current_pos also counts what it wrote itself, as a primary)."""
        return covers(str(self.scalar(name, f"SELECT @@{variable}")), position)


WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class Api(requests.Session):
    """A requests session that sends every path to one base URL (the stack's nginx).

    With API_KEY it sends the key on writes; reads stay anonymous, as most reads are.
    """

    def __init__(
        self, base_url: str, api_key: str | None = None, internal_url: str | None = None
    ) -> None:
        super().__init__()
        self.base_url, self.api_key, self.internal_url = base_url, api_key, internal_url

    def readyz(self) -> Any:
        """GET /readyz on nginx's internal listener (it is 404 on the public one)."""
        return requests.get(f"{self.internal_url}/readyz", timeout=10)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        verb = method.decode() if isinstance(method, bytes) else method
        if self.api_key and verb.upper() in WRITES:
            kwargs["headers"] = {"X-API-Key": self.api_key, **(kwargs.get("headers") or {})}
        return super().request(method, f"{self.base_url}{url!s}", *args, **kwargs)

    def create_user(self, name: str = "Ada", second_name: str = "Lovelace") -> dict[str, Any]:
        response = self.post("/api/users", json={"name": name, "second_name": second_name})
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()
        return user


def admitted_everywhere(stack: Stack) -> dict[str, dict[str, float]]:
    """Per API replica, `replica_admitted` for each replica: the least over its live workers.

    The gauge is exported as `livemin`, so 1 means every worker of that API replica routes reads
    to the replica; reads alone cannot show that (one worker's answer looks like all of them).
    """
    seen: dict[str, dict[str, float]] = {}
    for api in stack.apis:
        text = apihttp.get(stack, api, "/metrics")[1].decode()
        found = re.findall(r'^replica_admitted\{replica="([^"]+)"\} ([0-9.e+-]+)$', text, re.M)
        seen[api.name] = {replica: float(value) for replica, value in found}
    return seen


def every_worker_admits(stack: Stack, replicas: set[str]) -> bool:
    """Does every worker of every API replica route reads to exactly REPLICAS (of the stack's)?"""
    wanted = {r.name: float(r.name in replicas) for r in stack.replicas}
    return all(admitted == wanted for admitted in admitted_everywhere(stack).values())


def metric_total(stack: Stack, sample: str) -> float:
    """The value of metric SAMPLE (name and labels, as exposed) summed over the API replicas."""
    total = 0.0
    for api in stack.apis:
        text = apihttp.get(stack, api, "/metrics")[1].decode()
        for line in text.splitlines():
            if line.startswith(sample + " "):
                total += float(line.rsplit(" ", 1)[1])
    return total
