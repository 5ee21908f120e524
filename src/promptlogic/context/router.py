"""Routes of context records: thin wrappers over the service.

A record's ETag is its version (`"3"`). If-Match makes a PUT or DELETE conditional on it (409
when stale, as for labels), If-None-Match `*` makes a PUT create-only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from promptlogic.context import service
from promptlogic.context.bulk import parse_upload
from promptlogic.context.models import ContextRecord
from promptlogic.context.schemas import BulkOut, RecordKeyText, RecordOut, RecordPut
from promptlogic.context.values import (
    MAX_KEY_CHARS,
    NAMESPACE_PATTERN,
    ValueProblem,
    encode_value,
)
from promptlogic.db.engine import SessionDep
from promptlogic.errors import InvalidInput, PayloadTooLarge, Problem
from promptlogic.etags import etag_of, number_in
from promptlogic.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from promptlogic.tenancy.auth import ReadPrincipal, WritePrincipal
from promptlogic.validation import SINGLE_LINE_PATTERN

router = APIRouter(prefix="/v1/context", tags=["context"])

NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json",
    "text/plain",
}

NamespacePath = Annotated[
    str,
    Path(
        pattern=NAMESPACE_PATTERN,
        description="Lowercase letters, digits, `.`, `_`, `-`; up to 100 characters.",
    ),
]
KeyPath = Annotated[
    RecordKeyText,
    Path(
        description=f"The record's key, URL-encoded: up to {MAX_KEY_CHARS} characters, no `/`, "
        "no control characters, no surrounding whitespace."
    ),
]
IfMatch = Annotated[
    str | None, Header(max_length=100, description='The record\'s ETag, e.g. `"3"`, or `*`.')
]
IfNoneMatch = Annotated[str | None, Header(max_length=100)]


class UnsupportedMediaType(Problem):
    status, slug = 415, "unsupported-media-type"


def record_out(record: ContextRecord) -> RecordOut:
    return RecordOut(
        namespace=record.namespace,
        key=record.key,
        value=record.value,
        version=record.version,
        created_at=record.created_at,
        updated_at=record.updated_at,
        updated_by=record.updated_by,
    )


def etag(record: ContextRecord) -> str:
    return etag_of(record.version)


def precondition_of(if_match: str | None, if_none_match: str | None) -> service.Precondition:
    if if_none_match is not None:
        if if_match is not None:
            raise InvalidInput.field("header.If-None-Match", "give If-Match or If-None-Match")
        if if_none_match.strip() != "*":
            raise InvalidInput.field("header.If-None-Match", "only `*` (create only) is supported")
        return service.Precondition(create_only=True)
    if if_match is None:
        return service.Precondition()
    if if_match.strip() == "*":
        return service.Precondition(must_exist=True)
    return service.Precondition(expected_version=_record_version(if_match))


def _record_version(if_match: str) -> int:
    return number_in(if_match, header="If-Match", what="the record's")


@router.get("/{namespace}")
async def list_records(
    namespace: NamespacePath,
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    prefix: Annotated[
        str | None,
        Query(
            max_length=MAX_KEY_CHARS,
            pattern=SINGLE_LINE_PATTERN,
            description="Only keys that start with this text (taken literally: `%`, `_` too).",
        ),
    ] = None,
) -> Page[RecordOut]:
    """A namespace's records in key order (code points); an unknown namespace is empty."""
    records, next_cursor = await service.list_records(
        session,
        tenant_id=principal.tenant_id,
        namespace=namespace,
        limit=limit,
        cursor=cursor,
        prefix=prefix,
    )
    return Page(items=[record_out(r) for r in records], next_cursor=next_cursor)


@router.post(
    "/{namespace}:bulk",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
async def bulk_upsert(
    namespace: NamespacePath,
    principal: WritePrincipal,
    session: SessionDep,
    request: Request,
) -> BulkOut:
    """Create or replace many records from NDJSON, a line `{"key": ..., "value": {...}}` each.

    Good lines are written, bad ones are reported by line number; 200 either way. A key on
    several lines is reported on each and not written. At most 10,000 lines, within the
    request body limit.
    """
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type and content_type not in NDJSON_TYPES:
        raise UnsupportedMediaType(
            f"Send the lines as `application/x-ndjson`, not `{content_type}` "
            "(e.g. curl --data-binary @records.ndjson -H 'Content-Type: application/x-ndjson').",
            errors=[{"field": "header.Content-Type", "message": "must be application/x-ndjson"}],
        )
    upload = await run_in_threadpool(parse_upload, await request.body())
    counts = await service.bulk_upsert(
        session,
        tenant_id=principal.tenant_id,
        namespace=namespace,
        rows=upload.rows,
        actor=principal.actor,
        rejected=len(upload.errors),
    )
    return BulkOut.model_validate(
        {
            "written": counts.created + counts.updated + counts.unchanged,
            "created": counts.created,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "errors": upload.errors,
        }
    )


@router.get(
    "/{namespace}/{key:path}",
    response_model=RecordOut,
    responses={304: {"description": "If-None-Match names the current version."}},
)
async def get_record(
    namespace: NamespacePath,
    key: KeyPath,
    principal: ReadPrincipal,
    session: SessionDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> RecordOut | Response:
    """One record, with its version as ETag."""
    record = await service.get_record(
        session, tenant_id=principal.tenant_id, namespace=namespace, key=key
    )
    current = etag(record)
    if if_none_match is not None and if_none_match.strip() in ("*", current, f"W/{current}"):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(record)})
    response.headers["ETag"] = etag(record)
    return record_out(record)


@router.put(
    "/{namespace}/{key:path}",
    status_code=status.HTTP_200_OK,
    responses={201: {"model": RecordOut, "description": "Created."}},
)
async def put_record(
    namespace: NamespacePath,
    key: KeyPath,
    body: RecordPut,
    principal: WritePrincipal,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> RecordOut:
    """Create (201) or replace (200) a record's value; the same value again changes nothing."""
    precondition = precondition_of(if_match, if_none_match)
    try:
        encoded = encode_value(body.value)
    except ValueProblem as problem:
        errors = [{"field": "body.value", "message": problem.message}]
        if problem.too_large:
            raise PayloadTooLarge(
                f"body.value: {problem.message}. Split it over several records.", errors=errors
            ) from None
        raise InvalidInput(f"body.value: {problem.message}", errors=errors) from None
    result = await service.put_record(
        session,
        tenant_id=principal.tenant_id,
        namespace=namespace,
        key=key,
        encoded=encoded,
        actor=principal.actor,
        precondition=precondition,
    )
    if result.created:
        response.status_code = status.HTTP_201_CREATED
    response.headers["ETag"] = etag(result.record)
    return record_out(result.record)


@router.delete("/{namespace}/{key:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_record(
    namespace: NamespacePath,
    key: KeyPath,
    principal: WritePrincipal,
    session: SessionDep,
    if_match: IfMatch = None,
) -> None:
    """Delete a record; with If-Match, only at that version (409 otherwise)."""
    expected = None
    if if_match is not None and if_match.strip() != "*":
        expected = _record_version(if_match)
    await service.delete_record(
        session,
        tenant_id=principal.tenant_id,
        namespace=namespace,
        key=key,
        actor=principal.actor,
        expected_version=expected,
    )
