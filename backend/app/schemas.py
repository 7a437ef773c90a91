"""Shapes of request bodies, query strings and response documents."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.models import BIGINT_MAX, NAME_MAX, POST_BODY_MAX

# Characters no name may hold: C0 and C1 controls (NUL among them), DEL, and the bidirectional
# overrides and isolates that make text display other than it is stored.
NAME_FORBIDDEN = "\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069"
# A name as stored: no forbidden character, no whitespace at either end. The OpenAPI document
# publishes this very pattern, and validation applies it, so the two cannot disagree.
NAME_PATTERN = f"^[^\\s{NAME_FORBIDDEN}](?:[^{NAME_FORBIDDEN}]*[^\\s{NAME_FORBIDDEN}])?$"
_NAME = re.compile(NAME_PATTERN)


def plain_name(value: str) -> str:
    """VALUE as it is, or a clear error: names are stored exactly as sent, never trimmed."""
    if not _NAME.fullmatch(value):  # fullmatch: $ alone would let a final newline through
        raise ValueError(
            "must not start or end with whitespace, nor hold control or bidirectional-override"
            " characters"
        )
    return value


Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=NAME_MAX),
    AfterValidator(plain_name),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": NAME_MAX, "pattern": NAME_PATTERN}
    ),
]
# Characters no post may hold: as for names, but line breaks and tabs are text here.
BODY_FORBIDDEN = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069"
BODY_PATTERN = f"^[^{BODY_FORBIDDEN}]*$"
_BODY = re.compile(BODY_PATTERN)


def plain_body(value: str) -> str:
    """VALUE as it is, or a clear error: no NUL, other control or bidirectional override."""
    if not _BODY.fullmatch(value):
        raise ValueError(
            "must not hold control (but line breaks and tabs) or bidirectional-override characters"
        )
    return value


PostBody = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=POST_BODY_MAX),
    AfterValidator(plain_body),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": POST_BODY_MAX, "pattern": BODY_PATTERN}
    ),
]
STRICT = ConfigDict(extra="forbid", strict=True)


def ascii_digits(value: Any) -> Any:
    """A query string number is ASCII digits only: no sign, space, underscore or other script."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


# An integer from the query string (pydantic alone would take "5_0" as 50, " 5" and "+5" as 5).
QueryInt = Annotated[int, BeforeValidator(ascii_digits)]


class UserCreate(BaseModel):
    """Body of POST /api/users."""

    model_config = STRICT
    name: Name
    second_name: Name


class UserPatch(BaseModel):
    """Body of PATCH /api/users/{id}: any subset of the fields, at least one."""

    model_config = STRICT
    name: Name | None = None
    second_name: Name | None = None

    @field_validator("name", "second_name", mode="before")
    @classmethod
    def not_null(cls, value: object) -> object:
        """Leaving a field out keeps it; sending null would erase a required value."""
        if value is None:
            raise ValueError("may not be null; leave the field out to keep it")
        return value

    @model_validator(mode="after")
    def at_least_one_field(self) -> UserPatch:
        """An empty PATCH is a client mistake, not a no-op."""
        if not self.model_fields_set:
            raise ValueError("give at least one of: name, second_name")
        return self

    def changes(self) -> dict[str, str]:
        """The fields the client set, ready for an UPDATE."""
        return self.model_dump(include=self.model_fields_set)


class PostCreate(BaseModel):
    """Body of POST /api/users/{id}/posts."""

    model_config = STRICT
    body: PostBody


class UserPage(BaseModel):
    """Query of GET /api/users (strings from the URL are converted, then range-checked)."""

    model_config = ConfigDict(extra="forbid")
    limit: QueryInt = Field(20, ge=1, le=100)
    after: QueryInt = Field(0, ge=0, le=BIGINT_MAX)


class PostPage(BaseModel):
    """Query of GET /api/users/{id}/posts."""

    model_config = ConfigDict(extra="forbid")
    limit: QueryInt = Field(20, ge=1, le=100)
    # The bounds before the digits check: so they reach the published schema as minimum/maximum.
    before: Annotated[int, Ge(1), Le(BIGINT_MAX), BeforeValidator(ascii_digits)] | None = None


# The answers' documents: user_document and post_document write them, the OpenAPI document
# publishes these models' schemas, and a unit test keeps the two the same.
class User(BaseModel):
    """A user."""

    id: int
    name: str
    second_name: str
    created_at: datetime
    updated_at: datetime
    post_count: int = Field(
        description="Posts counted by the queue's workers: a moment behind the posts."
    )
    last_post_at: datetime | None


class Post(BaseModel):
    """A post."""

    id: int
    user_id: int
    body: str
    created_at: datetime


def timestamp(value: datetime) -> str:
    """A stored UTC timestamp in ISO 8601 with a Z."""
    return value.isoformat(timespec="microseconds") + "Z"


def user_document(user: dict[str, Any]) -> dict[str, Any]:
    """A user as the API shows it."""
    return {
        "id": user["id"],
        "name": user["name"],
        "second_name": user["second_name"],
        "created_at": timestamp(user["created_at"]),
        "updated_at": timestamp(user["updated_at"]),
        # Kept by the queue's workers from post events: a moment behind the posts themselves.
        "post_count": int(user.get("post_count") or 0),
        "last_post_at": timestamp(last) if (last := user.get("last_post_at")) else None,
    }


def post_document(post: dict[str, Any]) -> dict[str, Any]:
    """A post as the API shows it."""
    return {
        "id": post["id"],
        "user_id": post["user_id"],
        "body": post["body"],
        "created_at": timestamp(post["created_at"]),
    }


def json_bytes(document: Any) -> bytes:
    """A document as compact JSON: as sent, and as cached."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
