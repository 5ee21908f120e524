"""What a record's namespace, key and value may be, checked the same way for every route."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from promptlogic.validation import UNSTORABLE_TEXT

NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
MAX_KEY_CHARS = 200
MAX_VALUE_BYTES = 256 * 1024
MAX_VALUE_DEPTH = 64

# Control characters (C0, DEL, C1), `/` (it separates the key in a URL) and lone surrogates.
_KEY_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f/\ud800-\udfff]")


def key_problem(key: str) -> str | None:
    """Why `key` cannot name a record, or None. Keys are often ids or emails: any printable
    text up to 200 characters, without `/` or surrounding whitespace."""
    if not key:
        return "must not be empty"
    if len(key) > MAX_KEY_CHARS:
        return f"is {len(key)} characters long; the limit is {MAX_KEY_CHARS}"
    found = _KEY_FORBIDDEN.search(key)
    if found is not None:
        if found.group() == "/":
            return "must not contain `/`"
        return "must not contain control characters or lone surrogates"
    if key != key.strip():
        return "must not start or end with whitespace"
    return None


class ValueProblem(ValueError):
    """A value that cannot be stored; `too_large` tells a 413 from a 422."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.too_large = too_large


def encode_value(value: dict[str, Any]) -> str:
    """The value as compact JSON text, once it is known that Postgres stores it as given.

    Refused: text Postgres cannot hold (NUL, lone surrogates), numbers JSON cannot carry (NaN,
    Infinity, which Python's parser accepts), nesting deeper than MAX_VALUE_DEPTH, and more than
    MAX_VALUE_BYTES of UTF-8.
    """
    _check_tree(value)
    encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    size = len(encoded.encode())
    if size > MAX_VALUE_BYTES:
        raise ValueProblem(
            f"is {size} bytes as compact JSON; the limit is {MAX_VALUE_BYTES} bytes (256 KiB)",
            too_large=True,
        )
    return encoded


def _check_tree(value: Any) -> None:
    """Walk without recursion, so a deep value cannot exhaust the stack before it is refused."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_VALUE_DEPTH:
                raise ValueProblem(f"nests deeper than {MAX_VALUE_DEPTH} levels")
            for name, child in item.items():
                _check_text(name)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_VALUE_DEPTH:
                raise ValueProblem(f"nests deeper than {MAX_VALUE_DEPTH} levels")
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueProblem("holds a number JSON cannot carry (NaN, Infinity, or out of range)")


def _check_text(text: str) -> None:
    if UNSTORABLE_TEXT.search(text):
        raise ValueProblem("holds a NUL character or a lone surrogate, which cannot be stored")
