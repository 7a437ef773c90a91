"""Answers of the API as HTTP responses: JSON documents, cached bodies, write answers."""

from __future__ import annotations

from typing import Any

from flask import Response

from app.api.problems import not_found
from app.schemas import json_bytes
from app.services.idempotency import Answer
from app.services.units import Served


def json_response(document: Any, status: int = 200) -> Response:
    """DOCUMENT as a JSON response, encoded as cached answers are (and without jsonify's detour
    through the app's JSON provider)."""
    return Response(json_bytes(document), status=status, mimetype="application/json")


def served_response(served: Served) -> Response:
    """A read's answer: the JSON body as it is, or the 404 it holds as a problem."""
    if served.status == 200:
        return Response(served.body, status=200, mimetype="application/json")
    return not_found(served.body.decode())


def answer_response(answer: Answer) -> Response:
    """A write's answer, with its Location, and marked when it is a replay."""
    if answer.status == 204:
        response = Response(status=204)  # no body, so no type
        response.headers.pop("Content-Type", None)
    else:
        response = Response(answer.body, status=answer.status, mimetype="application/json")
    if answer.location:
        response.headers["Location"] = answer.location
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
