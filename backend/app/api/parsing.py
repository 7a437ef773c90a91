"""Turning a request's body and query string into validated models, or a clear 4xx."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.routing import IntegerConverter

from app.api.problems import Problem, validation_problem
from app.models import BIGINT_MAX

Model = TypeVar("Model", bound=BaseModel)
BIGINT_DIGITS = len(str(BIGINT_MAX))


class AsciiIntConverter(IntegerConverter):
    """Werkzeug's <int:...> with ASCII digits only: its \\d also matches other scripts' digits
    (Arabic-Indic or fullwidth 805 in /api/users/... were user 805). And in one spelling only, no
    leading zero: /api/users/007 is not user 7 (it would be another key at the edge, which no
    purge of /api/users/7 reaches)."""

    regex = r"0|[1-9][0-9]*"

    def to_python(self, value: str) -> int:
        """VALUE as a number; any run of more digits than a BIGINT has stands for one past the
        largest (not found), without parsing thousands of digits."""
        return BIGINT_MAX + 1 if len(value) > BIGINT_DIGITS else int(value)


# Deepest nesting of arrays and objects a body may have: the documents here are flat, and
# Python's JSON parser recurses (about a thousand levels end in RecursionError, a 500).
MAX_JSON_DEPTH = 32


def nesting_depth(raw: bytes) -> int:
    """How deeply RAW's arrays and objects nest (brackets inside strings do not count)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # cannot be deeper than the bound: skip the scan (every usual body)
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            escaped, in_string = (False, True) if escaped else (byte == 0x5C, byte != 0x22)
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


class DuplicateKey(ValueError):
    """A JSON object names a key twice: which one wins is the parser's choice, never the
    client's intent (and two parsers may choose differently)."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; DuplicateKey when a key comes twice."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(key)
        found[key] = value
    return found


def json_body(model: type[Model]) -> Model:
    """The request body as MODEL: 415 if not JSON, 400 if malformed or nested too deeply, 422
    naming bad fields."""
    if not request.is_json:
        raise Problem(415, "Send the body as application/json.")
    if nesting_depth(request.get_data(cache=True)) > MAX_JSON_DEPTH:
        raise Problem(400, f"The body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels.")
    try:
        data = json.loads(request.get_data(cache=True), object_pairs_hook=unique_keys)
    except DuplicateKey as error:
        raise Problem(400, f"The body names {str(error)[:64]!r} twice.") from error
    except ValueError as error:
        raise Problem(400, "The body is not valid JSON.") from error
    if not isinstance(data, dict):
        raise Problem(
            422, "The body must be a JSON object.", problem_type="/problems/validation-error"
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_problem(error, "body") from error


def query_args(model: type[Model]) -> Model:
    """The query string as MODEL: 422 naming each bad or unknown parameter."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise validation_problem(error, "query") from error
