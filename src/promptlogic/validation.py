"""Checks shared by schemas and services for values Postgres cannot store or should not see."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
"""For query parameters that are names or filters: no control characters (nor NUL)."""

UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
"""NUL (Postgres text cannot hold it) and lone UTF-16 surrogates (UTF-8 cannot encode them)."""


def single_line(value: str) -> str:
    """A name or label: stripped, without control characters (Postgres rejects NUL outright)."""
    value = value.strip()
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def as_utc(value: datetime) -> datetime:
    """An aware datetime converted to UTC; refused when naive or outside the storable range."""
    if value.tzinfo is None:
        raise ValueError("must include a timezone, e.g. 2030-01-01T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the supported range of dates") from None
