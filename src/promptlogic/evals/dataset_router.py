"""Routes of eval datasets and their cases: thin wrappers over `datasets`.

A dataset's ETag is its revision (`"3"`). If-Match on a case's PATCH or DELETE makes the change
conditional on it: 409 when the dataset moved on since the caller read it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Problem
from promptlogic.etags import MAX_NUMBER, etag_of, number_in
from promptlogic.evals import dataset_io, datasets
from promptlogic.evals.dataset_schemas import (
    MAX_CASES_PER_REQUEST,
    CaseFromRun,
    CaseIn,
    CaseOut,
    CasePage,
    CasesAdded,
    CaseUpdate,
    DatasetCreate,
    DatasetOut,
    DatasetUpdate,
    ImportOut,
    cases_of,
)
from promptlogic.evals.models import Dataset, DatasetCase
from promptlogic.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.tenancy.auth import ReadPrincipal, WritePrincipal

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

JSONL_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json",
    "text/plain",
}
CSV_TYPES = {"text/csv"}

DatasetPath = Annotated[str, Path(pattern=NAME_PATTERN, description="The dataset's name.")]
CaseIdPath = Annotated[uuid.UUID, Path(description="The case's `case_id`.")]
RevisionQuery = Annotated[
    int | None,
    Query(ge=0, le=MAX_NUMBER, description="A revision of the dataset; the current by default."),
]
IfMatch = Annotated[
    str | None,
    Header(max_length=100, description='The dataset\'s revision as ETag, e.g. `"3"`, or `*`.'),
]


class UnsupportedMediaType(Problem):
    status, slug = 415, "unsupported-media-type"


def dataset_out(info: datasets.DatasetInfo) -> DatasetOut:
    dataset = info.dataset
    return DatasetOut(
        id=dataset.id,
        name=dataset.name,
        description=dataset.description,
        revision=dataset.revision,
        case_count=info.case_count,
        created_at=dataset.created_at,
        updated_at=dataset.updated_at,
    )


def case_out(case: DatasetCase) -> CaseOut:
    return CaseOut(
        case_id=case.case_id,
        inputs=case.inputs,
        expected=case.expected,
        tags=list(case.tags),
        notes=case.notes,
        source_run_id=case.source_run_id,
        added_revision=case.added_revision,
    )


def set_etag(response: Response, dataset: Dataset | int) -> None:
    revision = dataset if isinstance(dataset, int) else dataset.revision
    response.headers["ETag"] = etag_of(revision)


def expected_revision(if_match: str | None) -> int | None:
    """The revision an If-Match names; None without one or for `*` (any revision)."""
    if if_match is None or if_match.strip() == "*":
        return None
    return number_in(if_match, header="If-Match", what="the dataset's")


def import_format(request: Request) -> dataset_io.Format:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not content_type or content_type in JSONL_TYPES:
        return "jsonl"
    if content_type in CSV_TYPES:
        return "csv"
    raise UnsupportedMediaType(
        f"Send the cases as `application/x-ndjson` (a JSON case per line) or `text/csv`, not "
        f"`{content_type}`.",
        errors=[
            {"field": "header.Content-Type", "message": "must be application/x-ndjson or text/csv"}
        ],
    )


# Datasets


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_dataset(
    body: DatasetCreate, principal: WritePrincipal, session: SessionDep, response: Response
) -> DatasetOut:
    """Create an empty dataset, at revision 0; 409 if the name is taken."""
    dataset = await datasets.create_dataset(
        session,
        tenant_id=principal.tenant_id,
        name=body.name,
        description=body.description,
        actor=principal.actor,
    )
    await session.flush()
    await session.refresh(dataset)  # created_at and updated_at come from the database
    set_etag(response, dataset)
    return dataset_out(datasets.DatasetInfo(dataset, 0))


@router.get("")
async def list_datasets(
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[DatasetOut]:
    """The tenant's datasets by name, with their revision and number of cases."""
    infos, next_cursor = await datasets.list_datasets(
        session, tenant_id=principal.tenant_id, limit=limit, cursor=cursor
    )
    return Page(items=[dataset_out(info) for info in infos], next_cursor=next_cursor)


@router.get(
    "/{dataset}:export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The cases, as a file to download.",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        }
    },
)
async def export_cases(
    dataset: DatasetPath,
    principal: ReadPrincipal,
    session: SessionDep,
    request: Request,
    file_format: Annotated[
        dataset_io.Format, Query(alias="format", description="`jsonl` (exact) or `csv`.")
    ] = "jsonl",
    revision: RevisionQuery = None,
) -> StreamingResponse:
    """The cases of a revision as JSONL or CSV, in added order; `:import` reads either back."""
    found = await datasets.get_dataset(session, tenant_id=principal.tenant_id, name=dataset)
    at = datasets.checked_revision(found, revision)
    return await dataset_io.export_response(
        session,
        request.app.state.sessionmaker,
        tenant_id=principal.tenant_id,
        dataset=found,
        revision=at,
        file_format=file_format,
    )


@router.get("/{dataset}")
async def get_dataset(
    dataset: DatasetPath, principal: ReadPrincipal, session: SessionDep, response: Response
) -> DatasetOut:
    """One dataset: its revision (also the ETag) and number of cases."""
    found = await datasets.get_dataset(session, tenant_id=principal.tenant_id, name=dataset)
    set_etag(response, found)
    return dataset_out(await datasets.describe(session, found))


@router.patch("/{dataset}")
async def update_dataset(
    dataset: DatasetPath,
    body: DatasetUpdate,
    principal: WritePrincipal,
    session: SessionDep,
    response: Response,
) -> DatasetOut:
    """Change a dataset's description; its cases and revision stay as they are."""
    found = await datasets.update_dataset(
        session,
        tenant_id=principal.tenant_id,
        name=dataset,
        description=body.description,
        actor=principal.actor,
    )
    set_etag(response, found)
    return dataset_out(await datasets.describe(session, found))


@router.delete("/{dataset}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_dataset(
    dataset: DatasetPath, principal: WritePrincipal, session: SessionDep
) -> None:
    """Delete a dataset with every revision of its cases."""
    await datasets.delete_dataset(
        session, tenant_id=principal.tenant_id, name=dataset, actor=principal.actor
    )


@router.post(
    "/{dataset}:import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_cases(
    dataset: DatasetPath, principal: WritePrincipal, session: SessionDep, request: Request
) -> ImportOut:
    """Add cases from JSONL (a case object per line) or CSV (a header row, then a case per row)
    in one new revision. Good lines are written, bad ones reported by line; 200 either way."""
    file_format = import_format(request)
    await datasets.get_dataset(session, tenant_id=principal.tenant_id, name=dataset)
    parse = dataset_io.parse_csv if file_format == "csv" else dataset_io.parse_jsonl
    parsed = await run_in_threadpool(parse, await request.body())
    found, written = await datasets.import_cases(
        session,
        tenant_id=principal.tenant_id,
        name=dataset,
        cases=parsed.cases,
        rejected=parsed.bad_lines,
        file_format=file_format,
        actor=principal.actor,
    )
    return ImportOut.model_validate(
        {"revision": found.revision, "written": written, "errors": parsed.errors}
    )


# Cases

_CASE_SCHEMA = CaseIn.model_json_schema()


@router.post(
    "/{dataset}/cases",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            _CASE_SCHEMA,
                            {
                                "type": "array",
                                "items": _CASE_SCHEMA,
                                "minItems": 1,
                                "maxItems": MAX_CASES_PER_REQUEST,
                            },
                        ]
                    }
                }
            },
        }
    },
)
async def add_cases(
    dataset: DatasetPath,
    body: Annotated[Any, Body()],
    principal: WritePrincipal,
    session: SessionDep,
    response: Response,
) -> CasesAdded:
    """Add a case, or a list of up to 1,000, in one new revision. Any bad case is a 422 naming
    it (`body.3.inputs`) and nothing is written."""
    await datasets.get_dataset(session, tenant_id=principal.tenant_id, name=dataset)
    cases = await run_in_threadpool(cases_of, body)
    found, added = await datasets.add_cases(
        session,
        tenant_id=principal.tenant_id,
        name=dataset,
        cases=[dataset_io.content_of(case) for case in cases],
        actor=principal.actor,
    )
    set_etag(response, found)
    return CasesAdded(revision=found.revision, items=[case_out(case) for case in added])


@router.get("/{dataset}/cases")
async def list_cases(
    dataset: DatasetPath,
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    revision: RevisionQuery = None,
) -> CasePage:
    """The cases of a revision (the current one by default) in the order they were added."""
    found = await datasets.get_dataset(session, tenant_id=principal.tenant_id, name=dataset)
    listed, cases, next_cursor = await datasets.list_cases(
        session,
        tenant_id=principal.tenant_id,
        dataset=found,
        revision=revision,
        limit=limit,
        cursor=cursor,
    )
    return CasePage(revision=listed, items=[case_out(c) for c in cases], next_cursor=next_cursor)


@router.post("/{dataset}/cases:from-run", status_code=status.HTTP_201_CREATED)
async def add_case_from_run(
    dataset: DatasetPath,
    body: CaseFromRun,
    principal: WritePrincipal,
    session: SessionDep,
    response: Response,
) -> CaseOut:
    """Add a case from a recorded run: its inputs, and its output as expected unless
    `"expected": "none"`; a run without output (failed) needs `none`."""
    found, case = await datasets.case_from_run(
        session,
        tenant_id=principal.tenant_id,
        name=dataset,
        run_id=body.run_id,
        keep_output=body.expected == "output",
        tags=body.tags,
        notes=body.notes,
        actor=principal.actor,
    )
    set_etag(response, found)
    return case_out(case)


@router.get("/{dataset}/cases/{case_id}")
async def get_case(
    dataset: DatasetPath,
    case_id: CaseIdPath,
    principal: ReadPrincipal,
    session: SessionDep,
    response: Response,
    revision: RevisionQuery = None,
) -> CaseOut:
    """One case as it is, or as it was at `revision`; the ETag is the revision read."""
    found = await datasets.get_dataset(session, tenant_id=principal.tenant_id, name=dataset)
    case = await datasets.get_case(
        session, tenant_id=principal.tenant_id, dataset=found, case_id=case_id, revision=revision
    )
    set_etag(response, found.revision if revision is None else revision)
    return case_out(case)


@router.patch("/{dataset}/cases/{case_id}")
async def update_case(
    dataset: DatasetPath,
    case_id: CaseIdPath,
    body: CaseUpdate,
    principal: WritePrincipal,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> CaseOut:
    """Change a case's inputs, expected, tags or notes in a new revision; with If-Match, only
    while the dataset is at that revision (409 otherwise)."""
    found, case = await datasets.update_case(
        session,
        tenant_id=principal.tenant_id,
        name=dataset,
        case_id=case_id,
        changes=body.changes(),
        actor=principal.actor,
        expected_revision=expected_revision(if_match),
    )
    set_etag(response, found)
    return case_out(case)


@router.delete("/{dataset}/cases/{case_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_case(
    dataset: DatasetPath,
    case_id: CaseIdPath,
    principal: WritePrincipal,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Remove a case in a new revision (earlier revisions keep it); If-Match as for PATCH."""
    found = await datasets.delete_case(
        session,
        tenant_id=principal.tenant_id,
        name=dataset,
        case_id=case_id,
        actor=principal.actor,
        expected_revision=expected_revision(if_match),
    )
    set_etag(response, found)
