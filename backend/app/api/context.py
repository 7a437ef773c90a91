"""Per-request context: request id, the application layer's Call, and the headers that show a
request's path.

Every response carries X-Request-ID, X-Served-By, X-DB-Node and X-Cache, so the path a request
took through the architecture is visible from the outside, and Cache-Control. A write response
also carries the read-your-writes token (header and cookie). What the token means is
app.services.consistency's business; here it is only read from the request and written to the
response.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from app import logs
from app.api.problems import Problem
from app.ids import unique_hex
from app.resilience import deadline
from app.services.consistency import Token
from app.services.container import Services
from app.services.units import Call, Units

REQUEST_ID_MAX = 128
SAFE_METHODS = frozenset({"GET", "HEAD"})
TOKEN_HEADER = "X-Consistency-Token"  # noqa: S105 (a header name, not a secret)
EDGE_FILL_HEADER = "X-Edge-Fill"
TOKEN_COOKIE = "consistency_token"  # noqa: S105 (a cookie name, not a secret)
TOKEN_ENVIRON = "HTTP_" + TOKEN_HEADER.upper().replace("-", "_")


def services() -> Services:
    """The application layer of this worker."""
    app_services: Services = current_app.extensions["services"]
    return app_services


def units() -> Units:
    """The units of work of this worker."""
    return services().units


def read_call() -> Call:
    """This request's Call into the application layer, with the client's token: a read must
    see the client's last write."""
    this_call: Call | None = g.get("call")
    if this_call is None:
        # nginx says whether the edge may keep the answer (nginx.conf.template, $edge_fill).
        edge = request.headers.get(EDGE_FILL_HEADER) == "1"
        this_call = g.call = Call(request_token(), for_edge=edge)
    return this_call


def write_call() -> Call:
    """This request's Call for a write: what the client read before does not matter to it."""
    this_call: Call | None = g.get("call")
    if this_call is None:
        this_call = g.call = Call(request_id=g.get("request_id", ""))
    return this_call


def request_token() -> Token | None:
    """The consistency token the client sent back: a bad header is a 400, a bad cookie is ignored.

    A cookie may outlive a secret-key rotation, so it is dropped quietly; a header is set on
    purpose by the client, so a forged or damaged one is an error the client should see. An
    expired one, from either, asks for nothing any more and is ignored.
    """
    # Straight from the WSGI environ: most reads carry neither, and parsing every Cookie header
    # (werkzeug does it on first access) cost a tenth of a cached read.
    environ = request.environ
    header = environ.get(TOKEN_ENVIRON)
    codec = services().codec
    token = codec.decode(header) if header else None
    if header and token is None and not codec.expired(header):
        raise Problem(400, f"The {TOKEN_HEADER} header is not a valid token.")
    if (
        token is None
        and TOKEN_COOKIE in environ.get("HTTP_COOKIE", "")
        and (cookie := request.cookies.get(TOKEN_COOKIE))
    ):
        token = codec.decode(cookie)
    return token


def issue_token(token: Token) -> None:
    """Send TOKEN with this response (as a committed write does)."""
    write_call().issued = token


def init_app(
    app: Flask, served_by: str, cookie_max_age_s: int, *, secure_cookie: bool = False
) -> None:
    """Install the hooks that stamp every response. SECURE_COOKIE: the consistency cookie is
    sent over HTTPS only (production, behind TLS); elsewhere it is Secure on requests that came
    over HTTPS (NGINX_TLS=on) and not on plain HTTP (development and test stacks)."""

    @app.before_request
    def take_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        valid = incoming and incoming.isprintable() and len(incoming) <= REQUEST_ID_MAX
        g.request_id = incoming if valid else unique_hex()  # behind nginx, every request has one
        logs.REQUEST_ID.set(g.request_id)

    @app.before_request
    def start_write_deadline() -> None:
        # A write answers within DB_WRITE_DEADLINE_S, its key check included: nginx gives up on a
        # replica only after longer (app/resilience/deadline.py).
        if request.method not in SAFE_METHODS:
            g.deadline = deadline.start(services().settings.db_write_deadline_s)

    @app.teardown_request
    def forget_request_id(_error: BaseException | None) -> None:
        logs.REQUEST_ID.set(None)
        if (opened := g.pop("deadline", None)) is not None:
            deadline.end(opened)

    @app.after_request
    def stamp_headers(response: Response) -> Response:
        headers = response.headers
        headers["X-Request-ID"] = g.get("request_id", "")
        headers["X-Served-By"] = served_by
        if "Cache-Control" not in headers:
            # A read may be kept by a client, but asked again before each use (it changes with
            # every write); errors and write answers are never kept.
            fresh_read = response.status_code == 200 and request.method in SAFE_METHODS
            headers["Cache-Control"] = "no-cache" if fresh_read else "no-store"
        this_call: Call | None = g.get("call")
        if this_call is None:
            headers["X-DB-Node"], headers["X-Cache"] = "none", "BYPASS"
            return response
        headers["X-DB-Node"], headers["X-Cache"] = this_call.node, this_call.cache
        # Only an answer that succeeded reports a write: an error committed nothing.
        if this_call.issued is not None and response.status_code < 400:
            new_token = services().codec.encode(this_call.issued)
            headers[TOKEN_HEADER] = new_token
            response.set_cookie(
                TOKEN_COOKIE,
                new_token,
                max_age=cookie_max_age_s,
                httponly=True,
                samesite="Lax",
                # Over HTTPS (nginx's TLS listener says so in X-Forwarded-Proto) always;
                # in production whatever the scheme, as production is served over HTTPS.
                secure=secure_cookie or request.is_secure,
            )
        return response
