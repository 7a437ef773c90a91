"""Per-request context: the request id, the node that served the data, and headers showing them.

Every response carries X-Request-ID, X-Served-By, X-DB-Node and X-Cache so that the path a
request took through the architecture is visible from the outside.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, Response, current_app, g, request
from sqlalchemy import Connection

from app.db.routing import Router

REQUEST_ID_MAX = 128


def router() -> Router:
    """The app's database router."""
    router: Router = current_app.extensions["db_router"]
    return router


@contextmanager
def reading() -> Iterator[Connection]:
    """A read unit of work on the node the router picks, recorded for X-DB-Node."""
    with router().reader() as uow:
        g.db_node = uow.node
        yield uow.conn


@contextmanager
def writing() -> Iterator[Connection]:
    """A write unit of work on the primary, recorded for X-DB-Node."""
    with router().writer() as uow:
        g.db_node = uow.node
        yield uow.conn


def init_app(app: Flask, served_by: str) -> None:
    """Install the hooks that stamp every response."""

    @app.before_request
    def take_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = (
            incoming[:REQUEST_ID_MAX] if incoming.isprintable() and incoming else (uuid.uuid4().hex)
        )

    @app.after_request
    def stamp_headers(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers["X-Served-By"] = served_by
        response.headers["X-DB-Node"] = g.get("db_node", "none")
        response.headers["X-Cache"] = "BYPASS"
        return response
