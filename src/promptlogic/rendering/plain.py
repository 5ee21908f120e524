"""Variables as plain JSON data, checked where they enter the renderer.

Templates only ever see dicts, lists, strings, numbers, booleans and None: rich objects (ORM
rows, settings, sessions) expose methods and attributes no sandbox rule anticipates.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from promptlogic.errors import InvalidInput

MAX_DEPTH = 64


class _NotPlain(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


def _convert(value: Any, depth: int) -> Any:
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int or kind is float:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if depth >= MAX_DEPTH:
        raise _NotPlain(f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        converted = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotPlain(f"has a key that is not a string ({type(key).__name__})")
            try:
                converted[str.__str__(key)] = _convert(item, depth + 1)
            except _NotPlain as problem:
                problem.path.append(key)
                raise
        return converted
    if isinstance(value, list | tuple):
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_convert(item, depth + 1))
            except _NotPlain as problem:
                problem.path.append(str(index))
                raise
        return items
    raise _NotPlain(f"must be JSON data, not {type(value).__name__}")


def to_plain(value: Mapping[str, Any], field: str = "variables") -> dict[str, Any]:
    """A copy of `value` holding only JSON types (dates become ISO 8601 strings), or a 422."""
    if not isinstance(value, Mapping):
        raise InvalidInput.field(field, "must be an object")
    try:
        return _convert(value, 0)  # type: ignore[no-any-return]
    except _NotPlain as problem:
        where = ".".join([field, *reversed(problem.path)])
        raise InvalidInput.field(where, problem.message) from None
