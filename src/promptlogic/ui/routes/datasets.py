"""Eval datasets in the browser: the list, a dataset's cases (add, edit, delete), importing a
JSONL or CSV file, exporting one, and adding a case from a recorded run.

Everything goes through `evals.datasets`, as `/v1/datasets` does. A case's edit carries the
dataset revision the page showed: if the dataset changed meanwhile the edit is a conflict, shown
with what was typed kept, never a silent overwrite. Exports are served here (the API's needs an
API key) with the same `dataset_io` code, so the file is the one `:import` reads back.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Conflict, InvalidInput, NotFound, Problem
from promptlogic.etags import MAX_NUMBER
from promptlogic.evals import dataset_io, datasets
from promptlogic.evals.dataset_schemas import (
    TAG_SEPARATOR,
    CaseIn,
    DatasetCreate,
    field_errors,
)
from promptlogic.evals.models import DatasetCase
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.runs import service as runs
from promptlogic.ui.sessions import SignedIn
from promptlogic.ui.web import Editor, Reader, flash, page, redirect

router = APIRouter()

PAGE_SIZE = 50
PICKER_SIZE = 200  # datasets offered in a form's select
SHOWN_IMPORT_ERRORS = 200
DatasetName = Annotated[str, Path(pattern=NAME_PATTERN)]
Revision = Annotated[int | None, Query(ge=0, le=MAX_NUMBER)]
Cursor = Annotated[str | None, Query(max_length=500)]
JsonText = Annotated[str, Form(max_length=300_000)]
ShortText = Annotated[str, Form(max_length=5_000)]
EMPTY_INPUTS = "{\n  \n}"


def short(value: Any, limit: int = 160) -> str:
    """A value as one line of compact JSON (text as it is), cut at `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(slots=True)
class CaseForm:
    """A case's fields as the form holds them, kept as typed when the page comes back."""

    inputs: str = EMPTY_INPUTS
    expected: str = ""
    expected_json: bool = False
    tags: str = ""
    notes: str = ""

    @classmethod
    def of(cls, case: DatasetCase) -> CaseForm:
        as_text = case.expected is None or isinstance(case.expected, str)
        expected = case.expected if as_text else json.dumps(case.expected, indent=2)
        return cls(
            inputs=json.dumps(case.inputs, indent=2, ensure_ascii=False),
            expected=expected or "",
            expected_json=not as_text,
            tags=f" {TAG_SEPARATOR} ".join(case.tags),
            notes=case.notes,
        )


def _lines(text: str) -> str:
    """A textarea's value with the browser's CRLF line breaks made plain."""
    return text.replace("\r\n", "\n")


def parse_case(form: CaseForm) -> tuple[CaseIn | None, dict[str, str]]:
    """The case the form describes, or a message per field that is wrong."""
    errors: dict[str, str] = {}
    inputs: Any = None
    try:
        inputs = json.loads(form.inputs or "{}")
    except json.JSONDecodeError as exc:
        errors["inputs"] = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    else:
        if not isinstance(inputs, dict):
            errors["inputs"] = "must be a JSON object ({…}) of the prompt's variables"
    expected: Any = None
    if form.expected.strip():
        if form.expected_json:
            try:
                expected = json.loads(form.expected)
            except json.JSONDecodeError as exc:
                errors["expected"] = f"not valid JSON: {exc.msg} (line {exc.lineno})"
        else:
            expected = _lines(form.expected)
    if errors:
        return None, errors
    candidate = {
        "inputs": inputs,
        "expected": expected,
        "tags": [tag.strip() for tag in form.tags.split(TAG_SEPARATOR) if tag.strip()],
        "notes": _lines(form.notes),
    }
    try:
        return CaseIn.model_validate(candidate), {}
    except ValidationError as exc:
        for problem in field_errors(exc.errors(include_url=False)):
            errors.setdefault(problem["field"].split(".")[0], problem["message"])
        return None, errors


async def dataset_choices(session: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    """The tenant's dataset names, for a form's select."""
    infos, _ = await datasets.list_datasets(session, tenant_id=tenant_id, limit=PICKER_SIZE)
    return [info.dataset.name for info in infos]


# The list


async def _list_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    cursor: str | None = None,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    infos, next_cursor = await datasets.list_datasets(
        session, tenant_id=member.tenant.id, limit=PAGE_SIZE, cursor=cursor
    )
    context = {
        "infos": infos,
        "next_cursor": next_cursor,
        "values": values or {"name": "", "description": ""},
        "errors": errors or {},
    }
    return page(request, "evals/datasets.html", context, status_code=status_code)


@router.get("/datasets")
async def datasets_list(
    request: Request, member: Reader, session: SessionDep, cursor: Cursor = None
) -> Response:
    """The tenant's datasets by name, with their number of cases and revision."""
    return await _list_page(request, member, session, cursor)


@router.post("/datasets-new")
async def create_dataset(
    request: Request,
    member: Editor,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)],
    description: ShortText = "",
) -> Response:
    """Create an empty dataset (revision 0), then add or import its cases."""
    values = {"name": name, "description": description}
    try:
        body = DatasetCreate(name=name.strip(), description=_lines(description))
        await datasets.create_dataset(
            session,
            tenant_id=member.tenant.id,
            name=body.name,
            description=body.description,
            actor=member.actor,
        )
    except ValidationError as exc:
        errors = {str(e["loc"][0]): e["msg"] for e in exc.errors()}
        return await _list_page(
            request, member, session, values=values, errors=errors, status_code=422
        )
    except Problem as problem:
        await session.rollback()
        errors = {"name": problem.detail}
        return await _list_page(
            request, member, session, values=values, errors=errors, status_code=problem.status
        )
    response = redirect(f"/ui/datasets/{body.name}")
    return flash(request, response, f"Created the dataset `{body.name}`. Add or import cases.")


# A dataset


async def _dataset_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    name: str,
    *,
    cursor: str | None = None,
    revision: int | None = None,
    form: CaseForm | None = None,
    errors: dict[str, str] | None = None,
    report: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """A dataset's page; with the add form as typed, or an import's report, after a post."""
    found = await datasets.get_dataset(session, tenant_id=member.tenant.id, name=name)
    info = await datasets.describe(session, found)
    listed, cases, next_cursor = await datasets.list_cases(
        session,
        tenant_id=member.tenant.id,
        dataset=found,
        revision=revision,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    context = {
        "info": info,
        "dataset": found,
        "cases": cases,
        "listed": listed,
        "next_cursor": next_cursor,
        "form": form or CaseForm(),
        "errors": errors or {},
        "report": report,
        "short": short,
    }
    return page(request, "evals/dataset.html", context, status_code=status_code)


@router.get("/datasets/{dataset}")
async def dataset_page(
    request: Request,
    member: Reader,
    session: SessionDep,
    dataset: DatasetName,
    cursor: Cursor = None,
    revision: Revision = None,
) -> Response:
    """A dataset's cases (of its current revision, or `?revision=N`), and its forms."""
    return await _dataset_page(request, member, session, dataset, cursor=cursor, revision=revision)


@router.post("/datasets/{dataset}/describe")
async def describe_dataset(
    request: Request,
    member: Editor,
    session: SessionDep,
    dataset: DatasetName,
    description: ShortText = "",
) -> Response:
    """Change the description (not the cases: no new revision)."""
    await datasets.update_dataset(
        session,
        tenant_id=member.tenant.id,
        name=dataset,
        description=_lines(description).strip(),
        actor=member.actor,
    )
    return flash(request, redirect(f"/ui/datasets/{dataset}"), "Saved the description.")


@router.post("/datasets/{dataset}/delete")
async def delete_dataset(
    request: Request, member: Editor, session: SessionDep, dataset: DatasetName
) -> Response:
    """Delete the dataset with every revision of its cases."""
    await datasets.delete_dataset(
        session, tenant_id=member.tenant.id, name=dataset, actor=member.actor
    )
    return flash(request, redirect("/ui/datasets"), f"Deleted the dataset `{dataset}`.")


@router.post("/datasets/{dataset}/cases")
async def add_case(
    request: Request,
    member: Editor,
    session: SessionDep,
    dataset: DatasetName,
    inputs: JsonText = "",
    expected: JsonText = "",
    expected_json: Annotated[str, Form(max_length=10)] = "",
    tags: ShortText = "",
    notes: ShortText = "",
) -> Response:
    """Add one case, in a new revision; a wrong field shows the form again as typed."""
    await datasets.get_dataset(session, tenant_id=member.tenant.id, name=dataset)
    form = CaseForm(inputs, expected, bool(expected_json), tags, notes)
    case, errors = parse_case(form)
    if case is None:
        return await _dataset_page(
            request, member, session, dataset, form=form, errors=errors, status_code=422
        )
    found, _ = await datasets.add_cases(
        session,
        tenant_id=member.tenant.id,
        name=dataset,
        cases=[dataset_io.content_of(case)],
        actor=member.actor,
    )
    message = f"Added a case: the dataset is at revision {found.revision}."
    return flash(request, redirect(f"/ui/datasets/{dataset}"), message)


def _format_of(upload: UploadFile, chosen: str) -> dataset_io.Format:
    """The import's format: as chosen, else by the file's name, else by its type."""
    if chosen in ("jsonl", "csv"):
        return chosen  # type: ignore[return-value]
    filename = (upload.filename or "").lower()
    if filename.endswith(".csv") or (upload.content_type or "").startswith("text/csv"):
        return "csv"
    return "jsonl"


@router.post("/datasets/{dataset}/import")
async def import_cases(
    request: Request,
    member: Editor,
    session: SessionDep,
    dataset: DatasetName,
    file: Annotated[UploadFile, File()],
    file_format: Annotated[Literal["auto", "jsonl", "csv"], Form(alias="format")] = "auto",
) -> Response:
    """Add the good cases of a JSONL or CSV file in one new revision; the page lists the bad
    lines and how many cases were written."""
    await datasets.get_dataset(session, tenant_id=member.tenant.id, name=dataset)
    chosen = _format_of(file, file_format)
    parse = dataset_io.parse_csv if chosen == "csv" else dataset_io.parse_jsonl
    try:
        parsed = await run_in_threadpool(parse, await file.read())
    except Problem as problem:  # not UTF-8, too many lines
        report: dict[str, Any] = {"format": chosen, "file": file.filename, "failed": problem.detail}
        return await _dataset_page(
            request, member, session, dataset, report=report, status_code=problem.status
        )
    found, written = await datasets.import_cases(
        session,
        tenant_id=member.tenant.id,
        name=dataset,
        cases=parsed.cases,
        rejected=parsed.bad_lines,
        file_format=chosen,
        actor=member.actor,
    )
    await session.flush()  # the page reads the dataset again, and must see the new revision
    report = {
        "format": chosen,
        "file": file.filename,
        "failed": None,
        "written": written,
        "revision": found.revision,
        "bad_lines": parsed.bad_lines,
        "errors": parsed.errors[:SHOWN_IMPORT_ERRORS],
        "more_errors": max(0, len(parsed.errors) - SHOWN_IMPORT_ERRORS),
    }
    return await _dataset_page(request, member, session, dataset, report=report)


@router.get("/datasets/{dataset}/export")
async def export_cases(
    request: Request,
    member: Reader,
    session: SessionDep,
    dataset: DatasetName,
    file_format: Annotated[dataset_io.Format, Query(alias="format")] = "jsonl",
    revision: Revision = None,
) -> Response:
    """The cases of a revision as a JSONL or CSV download, which the import reads back."""
    found = await datasets.get_dataset(session, tenant_id=member.tenant.id, name=dataset)
    at = datasets.checked_revision(found, revision)
    return await dataset_io.export_response(
        session,
        request.app.state.sessionmaker,
        tenant_id=member.tenant.id,
        dataset=found,
        revision=at,
        file_format=file_format,
    )


# A case


async def _case_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    name: str,
    case_id: uuid.UUID,
    *,
    form: CaseForm | None = None,
    revision: int | None = None,
    errors: dict[str, str] | None = None,
    conflict: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """A case with its edit form: as stored, or as typed when a save comes back."""
    found = await datasets.get_dataset(session, tenant_id=member.tenant.id, name=name)
    case = None
    try:
        case = await datasets.get_case(
            session, tenant_id=member.tenant.id, dataset=found, case_id=case_id
        )
    except NotFound:
        if conflict is None:
            raise
    context = {
        "dataset": found,
        "case_id": case_id,
        "case": case,
        "form": form or CaseForm.of(case),  # type: ignore[arg-type]
        "revision": found.revision if revision is None else revision,
        "errors": errors or {},
        "conflict": conflict,
    }
    return page(request, "evals/case.html", context, status_code=status_code)


@router.get("/datasets/{dataset}/cases/{case_id}")
async def case_page(
    request: Request,
    member: Reader,
    session: SessionDep,
    dataset: DatasetName,
    case_id: uuid.UUID,
) -> Response:
    """One case of the current revision, to read or edit."""
    return await _case_page(request, member, session, dataset, case_id)


def _seen(revision: str) -> int | None:
    return int(revision) if revision.isdigit() else None


@router.post("/datasets/{dataset}/cases/{case_id}")
async def save_case(
    request: Request,
    member: Editor,
    session: SessionDep,
    dataset: DatasetName,
    case_id: uuid.UUID,
    revision: Annotated[str, Form(max_length=20)] = "",
    inputs: JsonText = "",
    expected: JsonText = "",
    expected_json: Annotated[str, Form(max_length=10)] = "",
    tags: ShortText = "",
    notes: ShortText = "",
) -> Response:
    """Save a case's fields in a new revision, if the dataset is still at the revision the
    page showed; otherwise show the conflict with the typed fields kept."""
    form = CaseForm(inputs, expected, bool(expected_json), tags, notes)
    seen = _seen(revision)
    case, errors = parse_case(form)
    if case is None:
        return await _case_page(
            request,
            member,
            session,
            dataset,
            case_id,
            form=form,
            revision=seen,
            errors=errors,
            status_code=422,
        )
    try:
        found, _ = await datasets.update_case(
            session,
            tenant_id=member.tenant.id,
            name=dataset,
            case_id=case_id,
            changes=case.model_dump(),
            actor=member.actor,
            expected_revision=seen,
        )
    except (Conflict, NotFound) as problem:
        await session.rollback()
        await datasets.get_dataset(session, tenant_id=member.tenant.id, name=dataset)  # 404?
        conflict = {"detail": problem.detail, "seen": seen}
        return await _case_page(
            request,
            member,
            session,
            dataset,
            case_id,
            form=form,
            conflict=conflict,
            status_code=problem.status,
        )
    message = f"Saved the case: the dataset is at revision {found.revision}."
    return flash(request, redirect(f"/ui/datasets/{dataset}/cases/{case_id}"), message)


@router.post("/datasets/{dataset}/cases/{case_id}/delete")
async def delete_case(
    request: Request,
    member: Editor,
    session: SessionDep,
    dataset: DatasetName,
    case_id: uuid.UUID,
    revision: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Remove a case in a new revision (earlier revisions keep it), if nothing changed since."""
    try:
        found = await datasets.delete_case(
            session,
            tenant_id=member.tenant.id,
            name=dataset,
            case_id=case_id,
            actor=member.actor,
            expected_revision=_seen(revision),
        )
    except Conflict as problem:
        await session.rollback()
        target = f"/ui/datasets/{dataset}/cases/{case_id}"
        return flash(request, redirect(target), problem.detail, "error")
    message = f"Deleted the case: the dataset is at revision {found.revision}."
    return flash(request, redirect(f"/ui/datasets/{dataset}"), message)


# A case from a run


async def _from_run_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    run_id: uuid.UUID,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    run = await runs.get_run(session, tenant_id=member.tenant.id, run_id=run_id)
    has_output = run.parsed is not None or run.output is not None
    context = {
        "run": run,
        "choices": await dataset_choices(session, member.tenant.id),
        "values": values
        or {"dataset": "", "expected": "output" if has_output else "none", "tags": "", "notes": ""},
        "has_output": has_output,
        "errors": errors or {},
    }
    return page(request, "evals/from_run.html", context, status_code=status_code)


@router.get("/datasets-from-run")
async def from_run_form(
    request: Request, member: Editor, session: SessionDep, run: Annotated[uuid.UUID, Query()]
) -> Response:
    """Choose the dataset a recorded run becomes a case of, and whether its output is the
    expected value."""
    return await _from_run_page(request, member, session, run)


@router.post("/datasets-from-run")
async def add_from_run(
    request: Request,
    member: Editor,
    session: SessionDep,
    run: Annotated[uuid.UUID, Form()],
    dataset: Annotated[str, Form(max_length=200)] = "",
    expected: Annotated[Literal["output", "none"], Form()] = "output",
    tags: ShortText = "",
    notes: ShortText = "",
) -> Response:
    """A case with the run's inputs and (when chosen) its output as the expected value."""
    values = {"dataset": dataset, "expected": expected, "tags": tags, "notes": notes}
    form = CaseForm(EMPTY_INPUTS, "", False, tags, notes)
    _, problems = parse_case(form)  # the tags and notes, checked as any case's
    errors = {key: message for key, message in problems.items() if key in ("tags", "notes")}
    if not dataset:
        errors["dataset"] = "choose a dataset"
    else:
        try:
            await datasets.get_dataset(session, tenant_id=member.tenant.id, name=dataset)
        except NotFound as problem:
            errors["dataset"] = problem.detail
    if not errors:
        try:
            found, _ = await datasets.case_from_run(
                session,
                tenant_id=member.tenant.id,
                name=dataset,
                run_id=run,
                keep_output=expected == "output",
                tags=[tag.strip() for tag in tags.split(TAG_SEPARATOR) if tag.strip()],
                notes=_lines(notes),
                actor=member.actor,
            )
        except InvalidInput as problem:  # a failed run has no output to expect
            await session.rollback()
            messages = [e["message"] for e in problem.errors or []] or [problem.detail]
            errors["expected"] = "; ".join(messages)
        else:
            message = f"Added the run as a case: `{dataset}` is at revision {found.revision}."
            return flash(request, redirect(f"/ui/datasets/{dataset}"), message)
    return await _from_run_page(request, member, session, run, values, errors, 422)
