"""Cursor pagination: `{"items": [...], "next_cursor": ...}` with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from promptlogic.errors import InvalidInput
from promptlogic.validation import UNSTORABLE_TEXT

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, at most {MAX_LIMIT}.")
]
CursorQuery = Annotated[
    str | None, Query(max_length=500, description="`next_cursor` from the previous page.")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(list(values), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def paginate(
    rows: list[T], limit: int, position: Callable[[T], tuple[Any, ...]]
) -> tuple[list[T], str | None]:
    """Rows fetched with `limit + 1`: the page, and the cursor after its last row if more follow."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(*position(page[-1]))


def invalid_cursor() -> InvalidInput:
    return InvalidInput.field("query.cursor", "not a cursor returned by this list")


def decode_cursor(cursor: str, *types: type) -> list[Any]:
    """The values encoded in `cursor`, checked against `types`; 422 naming `cursor` otherwise."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid_cursor() from None
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, types, strict=True)
        )
    ):
        raise invalid_cursor()
    if any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in values):
        raise invalid_cursor()  # would overflow a bigint in the query
    if any(isinstance(v, str) and UNSTORABLE_TEXT.search(v) for v in values):
        raise invalid_cursor()  # no column holds such text
    return values
