"""Import and export of dataset cases as JSONL and CSV.

Import is lenient where the JSON API is strict: every good line is kept, every bad one is
reported by line number. Parsing is pure CPU work on up to the request body limit; the router
runs it in a thread. Export streams, a page of cases at a time, from its own session.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import StreamingResponse

from promptlogic.errors import InvalidInput, PayloadTooLarge
from promptlogic.etags import etag_of
from promptlogic.evals import datasets
from promptlogic.evals.dataset_schemas import (
    TAG_SEPARATOR,
    CaseIn,
    ImportLine,
    field_errors,
)
from promptlogic.evals.models import Dataset, DatasetCase

Format = Literal["jsonl", "csv"]
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
MAX_LINES = 10_000  # cases per upload, as a context records upload
RESERVED_COLUMNS = ("expected", "tags", "notes")
# A CSV cell that a spreadsheet would run as a formula (OWASP's list: = + - @ tab CR), after any
# apostrophes: an export puts one more apostrophe in front, which spreadsheets take as "text",
# and an import takes one off again, so an export reads back unchanged. Cases come from end
# users' runs (`:from-run`): "=HYPERLINK(…)" must not become a live link in an admin's sheet.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
EXPORT_PAGE = 500
BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class ParsedImport:
    cases: list[datasets.CaseContent] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"line", "field", "message"}
    bad_lines: int = 0

    def reject(self, line: int, problems: Iterable[dict[str, str]]) -> None:
        self.errors.extend({"line": line, **problem} for problem in problems)
        self.bad_lines += 1


def content_of(case: CaseIn) -> datasets.CaseContent:
    return datasets.CaseContent(
        inputs=case.inputs, expected=case.expected, tags=case.tags, notes=case.notes
    )


def _too_many(count: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload has {count} cases; the limit is {MAX_LINES} per upload.",
        errors=[{"field": "body", "message": f"more than {MAX_LINES} cases"}],
    )


# JSONL


def parse_jsonl(body: bytes) -> ParsedImport:
    """A case per non-blank line, as `CaseIn` (plus the fields an export adds)."""
    lines = body.removeprefix(BOM).split(b"\n")
    numbered = [(n, line.rstrip(b"\r")) for n, line in enumerate(lines, start=1) if line.strip()]
    if len(numbered) > MAX_LINES:
        raise _too_many(len(numbered))
    parsed = ParsedImport()
    if not numbered:
        parsed.reject(1, [{"field": "body", "message": "is empty: send one case per line"}])
    for number, line in numbered:
        try:
            case = ImportLine.model_validate_json(line)
        except ValidationError as exc:
            parsed.reject(number, field_errors(exc.errors(include_url=False)))
        else:
            parsed.cases.append(content_of(case))
    return parsed


# CSV


def parse_csv(body: bytes) -> ParsedImport:
    """A case per row after the header: the reserved columns `expected`, `tags` (separated by
    `|`) and `notes`, every other column an input variable whose value is the cell's text; an
    empty cell gives no variable (and no expected value). `line` is where the row starts."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"body: line {line} is not UTF-8; save the CSV as UTF-8",
            errors=[{"field": "body", "message": f"line {line} is not UTF-8"}],
        ) from None
    parsed = ParsedImport()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    start, rows = 1, 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            where = "row" if header is not None else "header"
            parsed.reject(start, [{"field": where, "message": f"is not valid CSV: {exc}"}])
            if header is None:
                return parsed
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        row = [_from_spreadsheet(cell) for cell in row]
        if header is None:
            problems = header_problems(row)
            if problems:
                parsed.reject(line, problems)
                return parsed
            header = [name.strip() for name in row]
            continue
        if not row:
            continue  # a blank line
        rows += 1
        if rows > MAX_LINES:
            raise _too_many(rows)
        _read_row(parsed, line, header, row)
    if header is None:
        message = "the file is empty: its first line must name the columns"
        parsed.reject(1, [{"field": "header", "message": message}])
    return parsed


def header_problems(header: list[str]) -> list[dict[str, str]]:
    """Why `header` cannot name the columns of a CSV import (names are stripped)."""
    if not header or header == [""]:
        return [{"field": "header", "message": "is missing: the first line must name the columns"}]
    names = [name.strip() for name in header]
    problems = [
        {"field": "header", "message": f"column {index} has no name"}
        for index, name in enumerate(names, start=1)
        if not name
    ]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    problems += [
        {"field": "header", "message": f"column `{name}` is named more than once"}
        for name in repeated
    ]
    return problems


def _read_row(parsed: ParsedImport, line: int, header: list[str], row: list[str]) -> None:
    if len(row) != len(header):
        message = f"has {len(row)} values; the header names {len(header)} columns"
        parsed.reject(line, [{"field": "row", "message": message}])
        return
    cells = dict(zip(header, row, strict=True))
    candidate = {
        "inputs": {k: v for k, v in cells.items() if k not in RESERVED_COLUMNS and v != ""},
        "expected": expected_from_cell(cells.get("expected", "")),
        "tags": [t.strip() for t in cells.get("tags", "").split(TAG_SEPARATOR) if t.strip()],
        "notes": cells.get("notes", ""),
    }
    try:
        case = CaseIn.model_validate(candidate)
    except ValidationError as exc:
        parsed.reject(line, field_errors(exc.errors(include_url=False)))
    else:
        parsed.cases.append(content_of(case))


def expected_from_cell(cell: str) -> Any:
    """An empty cell is no expected value; a JSON object or array is that JSON; anything else,
    numbers and `true` included, is text."""
    if cell == "":
        return None
    if cell.lstrip().startswith(("{", "[")):
        try:
            value = json.loads(cell)
        except ValueError:
            return cell
        if isinstance(value, dict | list):
            return value
    return cell


# Export


def export_line(case: DatasetCase) -> str:
    """A case as a JSONL line (an import reads it back; it ignores `case_id` and the rest)."""
    return json.dumps(
        {
            "case_id": str(case.case_id),
            "inputs": case.inputs,
            "expected": case.expected,
            "tags": list(case.tags),
            "notes": case.notes,
            "source_run_id": None if case.source_run_id is None else str(case.source_run_id),
            "added_revision": case.added_revision,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def csv_columns(names: list[str]) -> list[str]:
    """The header of a CSV export: the input names, then the reserved columns. 422 when an
    input name could not be read back as that input."""
    clash = [name for name in names if name in RESERVED_COLUMNS or name != name.strip() or not name]
    if clash:
        raise InvalidInput.field(
            "query.format",
            f"input {json.dumps(clash[0])} cannot be a CSV column (a reserved name, empty, or "
            "with surrounding whitespace); export as jsonl",
        )
    return [*names, *RESERVED_COLUMNS]


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def csv_text(rows: Iterable[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows([_for_spreadsheet(cell) for cell in row] for row in rows)
    return out.getvalue()


def _for_spreadsheet(cell: str) -> str:
    """The cell with an apostrophe in front when a spreadsheet would run it as a formula."""
    return "'" + cell if _FORMULA.match(cell) else cell


def _from_spreadsheet(cell: str) -> str:
    """The cell without the apostrophe an export put in front of a formula's first character."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell) else cell


def csv_row(case: DatasetCase, names: list[str]) -> list[str]:
    """A case as CSV cells: non-text inputs and expected values as JSON text."""
    return [
        *(_cell(case.inputs[name]) if name in case.inputs else "" for name in names),
        "" if case.expected is None else _cell(case.expected),
        TAG_SEPARATOR.join(case.tags),
        case.notes,
    ]


def encode_page(cases: list[DatasetCase], file_format: Format, names: list[str]) -> bytes:
    if file_format == "jsonl":
        return "".join(export_line(case) + "\n" for case in cases).encode()
    return csv_text(csv_row(case, names) for case in cases).encode()


async def export_chunks(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    tenant_id: uuid.UUID,
    dataset_id: uuid.UUID,
    revision: int,
    file_format: Format,
    names: list[str],
) -> AsyncIterator[bytes]:
    """The export's bytes, a page of cases at a time. A revision's cases never change, so
    pages read in separate statements still add up to that revision."""
    if file_format == "csv":
        yield csv_text([csv_columns(names)]).encode()
    after = None
    async with sessionmaker() as session:
        while True:
            page = await datasets.cases_after(
                session,
                tenant_id=tenant_id,
                dataset_id=dataset_id,
                revision=revision,
                after=after,
                limit=EXPORT_PAGE,
            )
            if not page:
                return
            yield await asyncio.to_thread(encode_page, page, file_format, names)
            after = page[-1].case_id


async def export_response(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    tenant_id: uuid.UUID,
    dataset: Dataset,
    revision: int,
    file_format: Format,
) -> StreamingResponse:
    """The cases of `revision` as a download, for the API and the web UI alike. A CSV whose
    input names cannot be columns is refused (422) now, not as a broken download later."""
    names: list[str] = []
    if file_format == "csv":
        names = await datasets.input_names(
            session, tenant_id=tenant_id, dataset_id=dataset.id, revision=revision
        )
        csv_columns(names)
    chunks = export_chunks(
        sessionmaker,
        tenant_id=tenant_id,
        dataset_id=dataset.id,
        revision=revision,
        file_format=file_format,
        names=names,
    )
    filename = f"{dataset.name}-r{revision}.{file_format}"
    return StreamingResponse(
        chunks,
        media_type=MEDIA_TYPES[file_format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "ETag": etag_of(revision),
        },
    )
