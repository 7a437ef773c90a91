"""Turning a request's body and query string into validated models, or a clear 4xx."""

from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from app.api.problems import Problem, validation_problem

Model = TypeVar("Model", bound=BaseModel)


def json_body(model: type[Model]) -> Model:
    """The request body as MODEL: 415 if not JSON, 400 if malformed, 422 naming bad fields."""
    if not request.is_json:
        raise Problem(415, "Send the body as application/json.")
    data = request.get_json(silent=True)
    if data is None:
        raise Problem(400, "The body is not valid JSON.")
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
