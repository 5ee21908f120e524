"""Field paths into JSON values, as evaluators name them: `a.b[0].c`.

The syntax is deliberately tiny, so that a path reads the same in a dataset, the API and the UI:

- keys separated by dots: `order.customer.name`; a key is any run of characters other than
  `.`, `[` and `]` (so `first name` and `x-id` are keys, and no key can hold a dot);
- list indices in brackets, counted from 0: `items[0]`, `matrix[1][2]`, `[0].name` (a list
  at the root); no negative indices, no slices, no wildcards;
- an optional leading `$` (`$.a.b`, `$[0]`), as in JSONPath, for those used to it.

`parse_path` turns the text into steps (a key is a `str`, an index an `int`) or raises
`PathError` saying where it went wrong; `follow` walks a value along the steps.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

MAX_PATH_CHARS = 500
MAX_STEPS = 50
MAX_INDEX_DIGITS = 9

Step = str | int
_KEY = re.compile(r"[^.\[\]]+")
_INDEX = re.compile(rf"\[(\d{{1,{MAX_INDEX_DIGITS}}})\]")


class PathError(ValueError):
    """A path that does not follow the syntax above."""


class MissingField(LookupError):
    """The value has nothing at the path; the message names the path and where it stopped."""


def _key_at(text: str, position: int) -> re.Match[str]:
    match = _KEY.match(text, position)
    if match is None:
        raise PathError(f"expected a field name at position {position + 1} of `{text}`")
    return match


def _index_at(text: str, position: int) -> re.Match[str]:
    match = _INDEX.match(text, position)
    if match is None:
        raise PathError(f"expected an index such as `[0]` at position {position + 1} of `{text}`")
    return match


def _start(text: str) -> int:
    """Where the first step begins, past an optional `$` or `$.`."""
    if not text.startswith("$"):
        return 0
    if text.startswith("$."):
        return 2
    if text.startswith("$["):
        return 1
    raise PathError("after `$` comes `.` or `[`, as in `$.a` or `$[0]`")


@lru_cache(maxsize=1024)
def parse_path(text: str) -> tuple[Step, ...]:
    """The steps of `text`: keys as `str`, indices as `int`."""
    if len(text) > MAX_PATH_CHARS:
        raise PathError(f"a path has at most {MAX_PATH_CHARS} characters")
    position = _start(text)
    if position == len(text):
        raise PathError("the path names no field")
    steps: list[Step] = []
    key_allowed = position == 0 or text[position - 1] == "."
    while position < len(text):
        if text[position] == "[":
            match = _index_at(text, position)
            steps.append(int(match[1]))
        else:
            if text[position] == "." and steps:
                position += 1
            elif not key_allowed:
                raise PathError(f"expected `.` or `[` at position {position + 1} of `{text}`")
            match = _key_at(text, position)
            steps.append(match[0])
        position, key_allowed = match.end(), False
        if len(steps) > MAX_STEPS:
            raise PathError(f"a path has at most {MAX_STEPS} steps")
    return tuple(steps)


def _step_text(step: Step) -> str:
    return f"[{step}]" if isinstance(step, int) else f".{step}"


def path_text(steps: tuple[Step, ...]) -> str:
    """The steps written back as a path (`a.b[0]`), for messages."""
    return "".join(_step_text(step) for step in steps).removeprefix(".")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else "a scalar"


def follow(value: Any, steps: tuple[Step, ...]) -> Any:
    """The part of `value` at `steps`; `MissingField` naming the path when there is none."""
    for done, step in enumerate(steps):
        reached = path_text(steps[:done]) or "the root"
        if isinstance(step, int):
            if not isinstance(value, list):
                raise MissingField(f"`{reached}` is {_kind(value)}, not a list")
            if step >= len(value):
                raise MissingField(f"`{reached}` has {len(value)} items, no index {step}")
        elif not isinstance(value, dict):
            raise MissingField(f"`{reached}` is {_kind(value)}, not an object")
        elif step not in value:
            raise MissingField(f"no field `{path_text(steps[: done + 1])}`")
        value = value[step]
    return value
