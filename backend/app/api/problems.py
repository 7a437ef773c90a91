"""Every error as application/problem+json (RFC 9457): {type, title, status, detail[, errors]}.

The one place where an error becomes an HTTP status: the errors of app.errors (raised by the
application layer and below), Werkzeug's own, and Problem, raised by the HTTP layer itself for
bad input.
"""

from __future__ import annotations

import json
import logging
import math
from http import HTTPStatus
from typing import Any

from flask import Flask, Response
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from app.errors import (
    BreakerOpen,
    DatabaseUnavailable,
    InvalidKey,
    KeyInProgress,
    KeyReused,
    NotFound,
    RevokedKey,
    Saturated,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error answer raised from a route: the status, a detail and optional field errors."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        problem_type: str = "about:blank",
        headers: dict[str, str] | None = None,
    ) -> None:
        """STATUS is the HTTP status; DETAIL says what went wrong in this occurrence."""
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors
        self.problem_type, self.headers = problem_type, headers or {}


def problem_body(problem: Problem) -> bytes:
    """The problem+json document of PROBLEM."""
    body: dict[str, Any] = {
        "type": problem.problem_type,
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = problem.errors
    return json.dumps(body).encode()


def problem_response(problem: Problem) -> Response:
    """Render a Problem as a problem+json response."""
    response = Response(problem_body(problem), status=problem.status, mimetype=PROBLEM_JSON)
    response.headers.update(problem.headers)
    return response


def validation_problem(error: ValidationError, where: str) -> Problem:
    """A 422 naming each field that failed and why; WHERE is 'body' or 'query'."""
    errors = [
        {
            "field": ".".join(str(part) for part in item["loc"]) or where,
            "message": item["msg"].removeprefix("Value error, "),
        }
        for item in error.errors()
    ]
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return Problem(
        422, f"Invalid {where}: {fields}", errors=errors, problem_type="/problems/validation-error"
    )


def not_found(detail: str) -> Response:
    """A 404 whose DETAIL is a NotFound's text ("user 5 does not exist")."""
    return problem_response(Problem(404, detail.capitalize() + "."))


KEY_HEADER = "X-API-Key"
CHALLENGE = {"WWW-Authenticate": f'ApiKey header="{KEY_HEADER}"'}
IDEMPOTENCY_HEADER = "Idempotency-Key"


def register_error_handlers(app: Flask) -> None:
    """Map every error the app can meet to a problem response."""

    @app.errorhandler(Problem)
    def on_problem(error: Problem) -> Response:
        return problem_response(error)

    @app.errorhandler(NotFound)
    def on_not_found(error: NotFound) -> Response:
        return not_found(str(error))

    @app.errorhandler(HTTPException)
    def on_http_exception(error: HTTPException) -> Response:
        status = error.code or 500
        response = problem_response(Problem(status, error.description or HTTPStatus(status).phrase))
        if status == 405 and error.response is None:
            response.headers["Allow"] = ", ".join(getattr(error, "valid_methods", None) or [])
        return response

    @app.errorhandler(InvalidKey)
    def on_invalid_key(error: InvalidKey) -> Response:
        detail = f"The {KEY_HEADER} is not a valid API key."
        return problem_response(Problem(401, detail, headers=CHALLENGE))

    @app.errorhandler(RevokedKey)
    def on_revoked_key(error: RevokedKey) -> Response:
        return problem_response(Problem(403, f"API key {error} has been revoked."))

    @app.errorhandler(KeyInProgress)
    def on_key_in_progress(error: KeyInProgress) -> Response:
        detail = f"A request with this {IDEMPOTENCY_HEADER} is still in progress; retry shortly."
        return problem_response(Problem(409, detail, headers={"Retry-After": "1"}))

    @app.errorhandler(KeyReused)
    def on_key_reused(error: KeyReused) -> Response:
        detail = f"This {IDEMPOTENCY_HEADER} was used for a different request."
        return problem_response(Problem(422, detail))

    @app.errorhandler(BreakerOpen)
    def on_breaker_open(error: BreakerOpen) -> Response:
        # Refused without trying: the node failed recently; its breaker says when to come back.
        detail = f"The {error.name} database is not available (circuit open); retry shortly."
        headers = {"Retry-After": str(max(1, math.ceil(error.open_s)))}
        return problem_response(Problem(503, detail, headers=headers))

    @app.errorhandler(Saturated)
    def on_saturated(error: Saturated) -> Response:
        detail = f"No replica can serve reads and the primary is at its cap: {error}."
        return problem_response(Problem(503, detail, headers={"Retry-After": "1"}))

    @app.errorhandler(DatabaseUnavailable)
    def on_database_unavailable(error: DatabaseUnavailable) -> Response:
        # Connection-level failures are the service's fault and temporary: say when to retry.
        cause = error.__cause__
        log.error("database error", extra={"error": str(getattr(cause, "orig", cause or error))})
        detail = "The database is not available; retry shortly."
        return problem_response(Problem(503, detail, headers={"Retry-After": "1"}))

    @app.errorhandler(Exception)
    def on_unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(Problem(500, "An unexpected error occurred."))
