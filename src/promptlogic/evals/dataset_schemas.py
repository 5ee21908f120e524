"""Request and response bodies of datasets and their cases, and the limits every way in shares.

A case arrives through the JSON API, an import line, a CSV row or a recorded run; each is
checked by the same validators, so the limits and the messages are the same everywhere.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from promptlogic.errors import InvalidInput
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.validation import UNSTORABLE_TEXT

MAX_JSON_BYTES = 64 * 1024  # inputs, and expected, as compact JSON
MAX_DEPTH = 64
MAX_TAGS = 20
MAX_TAG_CHARS = 50
MAX_NOTES_CHARS = 2_000
MAX_DESCRIPTION_CHARS = 2_000
MAX_CASES_PER_REQUEST = 1_000
TAG_SEPARATOR = "|"  # between the tags of a CSV cell, so no tag may hold it

# Control characters, the CSV tag separator, lone surrogates.
_TAG_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f|\ud800-\udfff]")


def json_problem(value: Any, max_bytes: int = MAX_JSON_BYTES) -> str | None:
    """Why `value` cannot be stored as a case's inputs or expected value, or None.

    Refused: NaN and Infinity (Python's parser accepts them, JSON cannot carry them), NUL and
    lone surrogates (Postgres cannot store them), nesting deeper than MAX_DEPTH, and more than
    `max_bytes` of compact UTF-8 JSON. Walked without recursion, so a deep value cannot exhaust
    the stack before it is refused.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list) and depth > MAX_DEPTH:
            return f"nests deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            for name, child in item.items():
                if UNSTORABLE_TEXT.search(name):
                    return "has a name with a NUL character or a lone surrogate"
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if UNSTORABLE_TEXT.search(item):
                return "holds a NUL character or a lone surrogate, which cannot be stored"
        elif isinstance(item, float) and not math.isfinite(item):
            return "holds a number JSON cannot carry (NaN or Infinity)"
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > max_bytes:
        return f"is {size} bytes as compact JSON; the limit is {max_bytes} bytes (64 KiB)"
    return None


def _checked_json(value: Any) -> Any:
    problem = json_problem(value)
    if problem is not None:
        raise PydanticCustomError("case_value", problem)
    return value


def _checked_tag(tag: str) -> str:
    if _TAG_FORBIDDEN.search(tag):
        raise PydanticCustomError(
            "case_tag", f"must not contain control characters or `{TAG_SEPARATOR}`"
        )
    if tag != tag.strip():
        raise PydanticCustomError("case_tag", "must not start or end with whitespace")
    return tag


def _distinct(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def _checked_notes(notes: str) -> str:
    if UNSTORABLE_TEXT.search(notes):
        raise PydanticCustomError("case_notes", "must not contain a NUL character")
    return notes


Inputs = Annotated[
    dict[str, Any],
    AfterValidator(_checked_json),
    Field(description="The variables of the case: a JSON object, up to 64 KiB as compact JSON."),
]
Expected = Annotated[
    Any,
    AfterValidator(_checked_json),
    Field(
        description="What a good output is: text, or any JSON value (up to 64 KiB); "
        "null or absent when the case has none."
    ),
]
Tag = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TAG_CHARS),
    AfterValidator(_checked_tag),
]
Tags = Annotated[
    list[Tag],
    Field(max_length=MAX_TAGS, description=f"Up to {MAX_TAGS}; repeats are dropped."),
    AfterValidator(_distinct),
]
Notes = Annotated[
    str, StringConstraints(max_length=MAX_NOTES_CHARS), AfterValidator(_checked_notes)
]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_CHARS)]
DatasetName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DatasetName = Field(description="As a prompt's name: `a-z`, `0-9`, `.`, `_`, `-`.")
    description: Description = ""


class DatasetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Description | None = None


class DatasetOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    revision: int = Field(description="0 when created, one more on each change of its cases.")
    case_count: int = Field(description="Cases at the current revision.")
    created_at: datetime
    updated_at: datetime


class CaseIn(BaseModel):
    """One case as the JSON API and an import line take it."""

    model_config = ConfigDict(extra="forbid")

    inputs: Inputs
    expected: Expected = None
    tags: Tags = []
    notes: Notes = ""


class ImportLine(CaseIn):
    """A JSONL line: a case, and the fields an export adds, which an import ignores (a case
    gets a new `case_id`; only `:from-run` sets `source_run_id`)."""

    case_id: Any = Field(default=None, exclude=True)
    source_run_id: Any = Field(default=None, exclude=True)
    added_revision: Any = Field(default=None, exclude=True)


class CaseUpdate(BaseModel):
    """The fields of a case to change; the others stay. `"expected": null` removes it."""

    model_config = ConfigDict(extra="forbid")

    inputs: Inputs | None = None
    expected: Expected = None
    tags: Tags | None = None
    notes: Notes | None = None

    def changes(self) -> dict[str, Any]:
        """The fields given, `expected` even when null; `null` for the others changes nothing."""
        given = {name: getattr(self, name) for name in self.model_fields_set}
        return {name: v for name, v in given.items() if v is not None or name == "expected"}


class CaseFromRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: uuid.UUID
    expected: Literal["output", "none"] = Field(
        default="output",
        description="`output`: the run's parsed output if it has one, else its output text.",
    )
    tags: Tags = []
    notes: Notes = ""


class CaseOut(BaseModel):
    case_id: uuid.UUID = Field(description="Stable across the case's edits.")
    inputs: dict[str, Any]
    expected: Any
    tags: list[str]
    notes: str
    source_run_id: uuid.UUID | None
    added_revision: int = Field(description="The revision that gave the case this content.")


class CasesAdded(BaseModel):
    revision: int = Field(description="The dataset's new revision, holding every case added.")
    items: list[CaseOut]


class CasePage(BaseModel):
    revision: int = Field(description="The revision listed; the cursor keeps to it.")
    items: list[CaseOut]
    next_cursor: str | None


class LineError(BaseModel):
    line: int = Field(description="1-based line of the upload where the case starts.")
    field: str
    message: str


class ImportOut(BaseModel):
    revision: int = Field(description="The new revision; unchanged when nothing was written.")
    written: int
    errors: list[LineError] = Field(description="Each problem of a line not written.")


def field_errors(errors: list[ErrorDetails], prefix: str = "") -> list[dict[str, str]]:
    """Pydantic's errors as `{field, message}`, the field under `prefix` (`body.3`), or
    relative to the case when `prefix` is empty (an import line)."""
    problems = []
    for error in errors:
        location = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        field, message = location or "line", str(error["msg"])
        kind = error["type"]
        if kind == "json_invalid":
            field = "line"
            message = "is not valid JSON: " + message.removeprefix("Invalid JSON: ")
        elif kind in ("model_type", "model_attributes_type"):
            message = 'must be a JSON object: {"inputs": {...}, "expected": ...}'
        elif kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a field of a case; give inputs, expected, tags, notes"
        elif kind == "dict_type":
            message = "must be a JSON object"
        problems.append({"field": field, "message": message})
    return problems


def cases_of(body: Any) -> list[CaseIn]:
    """The case or list of cases of a JSON body; every problem of every case in one 422, each
    naming its case (`body.3.inputs`), so a list is written whole or not at all."""
    if isinstance(body, dict):
        items, prefixes = [body], ["body"]
    elif isinstance(body, list):
        if not body:
            raise InvalidInput.field("body", "must hold at least one case")
        if len(body) > MAX_CASES_PER_REQUEST:
            raise InvalidInput.field(
                "body",
                f"holds {len(body)} cases; the limit is {MAX_CASES_PER_REQUEST} per request "
                "(import larger sets with `:import`)",
            )
        items, prefixes = body, [f"body.{index}" for index in range(len(body))]
    else:
        raise InvalidInput.field("body", "must be a case object or a list of them")
    cases, problems = [], []
    for item, prefix in zip(items, prefixes, strict=True):
        try:
            cases.append(CaseIn.model_validate(item))
        except ValidationError as exc:
            problems += field_errors(exc.errors(include_url=False), prefix)
    if problems:
        shown = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InvalidInput(shown + more, errors=problems)
    return cases
