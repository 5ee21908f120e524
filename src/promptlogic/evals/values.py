"""Comparing and showing the values evaluators look at: JSON equality, numbers, short quotes."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_SHOWN_CHARS = 200
MAX_NUMBER_CHARS = 100
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def clipped(text: str) -> str:
    """`text` cut to about 200 characters, for a reason."""
    return text if len(text) <= MAX_SHOWN_CHARS else f"{text[:MAX_SHOWN_CHARS]}…"


def shown(value: Any) -> str:
    """`value` for a reason: a quoted text or JSON, cut to about 200 characters."""
    if isinstance(value, str):
        text = repr(value[: MAX_SHOWN_CHARS + 1])
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (ValueError, RecursionError):
            text = "(a value too deep to show)"
    return clipped(text)


def is_json_value(value: Any) -> bool:
    """An expected value to compare as JSON (not text): an object, list, number or boolean."""
    return isinstance(value, dict | list | int | float)  # bool is an int


def _same_scalar(left: Any, right: Any) -> bool:
    """Equal JSON scalars; False for anything else (two containers are compared apart)."""
    if isinstance(left, bool) or isinstance(right, bool):  # JSON's true is not 1
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right  # 1 and 1.0 are the same JSON number
    return type(left) is type(right) and left == right


def json_equal(left: Any, right: Any) -> bool:
    """Equality of two JSON values, without Python's `True == 1`; iterative, so any depth
    the parser accepted compares without recursion."""
    pending = [(left, right)]
    while pending:
        a, b = pending.pop()
        if isinstance(a, dict) and isinstance(b, dict):
            if a.keys() != b.keys():
                return False
            pending.extend((a[key], b[key]) for key in a)
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif not _same_scalar(a, b):  # also a container against anything else
            return False
    return True


def as_number(value: Any) -> float | None:
    """A finite number from a JSON number or a text holding one in decimal (`"12.50"`, `" 3
    "`); None for anything else, booleans included."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_CHARS or not _DECIMAL.fullmatch(text):
            return None
        value = text
    elif not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a float's range
        return None
    return number if math.isfinite(number) else None
