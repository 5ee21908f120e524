"""Reading a bulk upload: NDJSON lines `{"key": ..., "value": {...}}`, each good or reported.

Pure CPU work on up to the request body limit; the router runs it in a thread.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from promptlogic.context.schemas import BulkLine
from promptlogic.context.values import ValueProblem, encode_value
from promptlogic.errors import PayloadTooLarge

MAX_LINES = 10_000
BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class ParsedUpload:
    rows: list[tuple[str, str]] = field(default_factory=list)  # (key, compact JSON value)
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"line": n, "errors": [...]}


def parse_upload(body: bytes) -> ParsedUpload:
    """Every good line as a row and every bad one as an error, by line number (from 1).

    Blank lines are skipped. A key given on several lines is ambiguous: each of those lines is
    reported and none is written. More than MAX_LINES lines is a 413 before anything is read.
    """
    lines = body.removeprefix(BOM).split(b"\n")
    numbered = [(n, line.rstrip(b"\r")) for n, line in enumerate(lines, start=1) if line.strip()]
    if len(numbered) > MAX_LINES:
        raise PayloadTooLarge(
            f"The upload has {len(numbered)} lines; the limit is {MAX_LINES} per upload.",
            errors=[{"field": "body", "message": f"more than {MAX_LINES} lines"}],
        )
    upload = ParsedUpload()
    good: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for number, line in numbered:
        parsed = _parse_line(line)
        if isinstance(parsed, list):
            upload.errors.append({"line": number, "errors": parsed})
        else:
            good[parsed[0]].append((number, parsed[1]))
    for key, occurrences in good.items():
        if len(occurrences) == 1:
            upload.rows.append((key, occurrences[0][1]))
            continue
        numbers = ", ".join(str(number) for number, _ in occurrences)
        message = f"key `{key}` is on lines {numbers}; a key may appear once per upload"
        upload.errors.extend(
            {"line": number, "errors": [{"field": "key", "message": message}]}
            for number, _ in occurrences
        )
    upload.errors.sort(key=lambda error: error["line"])
    return upload


def _parse_line(line: bytes) -> tuple[str, str] | list[dict[str, str]]:
    """(key, encoded value), or the line's problems as `{field, message}`."""
    try:
        parsed = BulkLine.model_validate_json(line)
    except ValidationError as exc:
        return [_line_error(error) for error in exc.errors(include_url=False)]
    try:
        return parsed.key, encode_value(parsed.value)
    except ValueProblem as problem:
        return [{"field": "value", "message": problem.message}]


def _line_error(error: Any) -> dict[str, str]:
    kind = error["type"]
    location = ".".join(str(part) for part in error["loc"]) or "line"
    if kind == "json_invalid":
        reason = str(error["msg"]).removeprefix("Invalid JSON: ")
        return {"field": "line", "message": f"is not valid JSON: {reason}"}
    if kind == "model_type":
        return {"field": "line", "message": 'must be a JSON object: {"key": ..., "value": {...}}'}
    if kind == "missing":
        return {"field": location, "message": "is required"}
    if kind == "extra_forbidden":
        return {"field": location, "message": "is not a field of a line; give `key` and `value`"}
    if kind == "dict_type":
        return {"field": location, "message": "must be a JSON object"}
    return {"field": location, "message": str(error["msg"])}
