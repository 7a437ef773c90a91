"""Per-request context: request id, consistency token, and the headers that show a request's path.

Every response carries X-Request-ID, X-Served-By, X-DB-Node and X-Cache, so the path a request
took through the architecture is visible from the outside. A write response also carries the
read-your-writes token (header and cookie).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from app.api.problems import Problem
from app.db.consistency import TOKEN_COOKIE, TOKEN_HEADER, Token, TokenCodec
from app.ids import unique_hex

REQUEST_ID_MAX = 128
TOKEN_ENVIRON = "HTTP_" + TOKEN_HEADER.upper().replace("-", "_")


def codec() -> TokenCodec:
    """The app's token codec."""
    token_codec: TokenCodec = current_app.extensions["token_codec"]
    return token_codec


def request_token() -> Token | None:
    """The consistency token the client sent back: a bad header is a 400, a bad cookie is ignored.

    A cookie may outlive a secret-key rotation, so it is dropped quietly; a header is set on
    purpose by the client, so a forged or damaged one is an error the client should see.
    """
    if "token" not in g:
        # Straight from the WSGI environ: most reads carry neither, and parsing every Cookie
        # header (werkzeug does it on first access) cost a tenth of a cached read.
        environ = request.environ
        header = environ.get(TOKEN_ENVIRON)
        token = codec().decode(header) if header else None
        if header and token is None:
            raise Problem(400, f"The {TOKEN_HEADER} header is not a valid token.")
        if (
            token is None
            and TOKEN_COOKIE in environ.get("HTTP_COOKIE", "")
            and (cookie := request.cookies.get(TOKEN_COOKIE))
        ):
            token = codec().decode(cookie)
        g.token = token
    token_in_request: Token | None = g.token
    return token_in_request


def issue_token(token: Token) -> None:
    """Send TOKEN with this response (after a write committed)."""
    g.new_token = codec().encode(token)


def init_app(
    app: Flask, served_by: str, cookie_max_age_s: int, *, secure_cookie: bool = False
) -> None:
    """Install the hooks that stamp every response. SECURE_COOKIE: the consistency cookie is
    sent over HTTPS only (production, behind TLS; development and test stacks speak plain HTTP)."""

    @app.before_request
    def take_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        valid = incoming and incoming.isprintable() and len(incoming) <= REQUEST_ID_MAX
        g.request_id = incoming if valid else unique_hex()  # behind nginx, every request has one

    @app.after_request
    def stamp_headers(response: Response) -> Response:
        headers = response.headers
        headers["X-Request-ID"] = g.get("request_id", "")
        headers["X-Served-By"] = served_by
        headers["X-DB-Node"] = g.get("db_node", "none")
        headers["X-Cache"] = g.get("cache_outcome", "BYPASS")
        # Only an answer that succeeded reports a write: an error committed nothing, and the
        # session's last GTID it might hold belongs to some earlier request.
        if (new_token := g.get("new_token")) and response.status_code < 400:
            headers[TOKEN_HEADER] = new_token
            response.set_cookie(
                TOKEN_COOKIE,
                new_token,
                max_age=cookie_max_age_s,
                httponly=True,
                samesite="Lax",
                secure=secure_cookie,
            )
        return response
