"""Context records in the browser: namespaces, a namespace's records, a record's editor.

Edits go through the same service as `PUT /v1/context/...`, with the version the page showed as
the expected one: a record changed by someone else meanwhile is a conflict, shown with the
value typed kept, never a silent overwrite.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import func

from promptlogic.context import service
from promptlogic.context.models import ContextRecord
from promptlogic.context.values import ValueProblem, encode_value, key_problem
from promptlogic.db.engine import SessionDep
from promptlogic.errors import Problem
from promptlogic.prompts.binding_schemas import NAMESPACE_PATTERN
from promptlogic.ui.web import Editor, Reader, flash, page, redirect

router = APIRouter()

PAGE_SIZE = 50
Namespace = Annotated[str, Path(pattern=NAMESPACE_PATTERN)]
Key = Annotated[str, Path(min_length=1, max_length=200)]
Text = Annotated[str, Form(max_length=300_000)]


@router.get("/context")
async def namespaces(request: Request, member: Reader, session: SessionDep) -> Response:
    rows = await session.execute(
        ContextRecord.for_tenant(
            member.tenant.id,
            ContextRecord.namespace,
            func.count(),
            func.max(ContextRecord.updated_at),
        )
        .group_by(ContextRecord.namespace)
        .order_by(ContextRecord.namespace)
    )
    return page(request, "context/namespaces.html", {"namespaces": list(rows)})


@router.get("/context/{namespace}")
async def records(
    request: Request,
    member: Reader,
    session: SessionDep,
    namespace: Namespace,
    prefix: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    found, next_cursor = await service.list_records(
        session,
        tenant_id=member.tenant.id,
        namespace=namespace,
        limit=PAGE_SIZE,
        cursor=cursor,
        prefix=prefix or None,
    )
    context = {
        "namespace": namespace,
        "records": found,
        "prefix": prefix,
        "next_cursor": next_cursor,
    }
    return page(request, "context/records.html", context)


def _editor(
    request: Request,
    namespace: str,
    key: str,
    value_text: str,
    version: int | None,
    *,
    is_new: bool,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "namespace": namespace,
        "key": key,
        "value_text": value_text,
        "version": version,
        "is_new": is_new,
        "error": error,
    }
    return page(request, "context/record.html", context, status_code=status_code)


@router.get("/context-new")
async def new_record(
    request: Request,
    member: Editor,
    namespace: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    return _editor(request, namespace, "", "{\n  \n}", None, is_new=True)


@router.get("/context/{namespace}/{key:path}")
async def record(
    request: Request, member: Reader, session: SessionDep, namespace: Namespace, key: Key
) -> Response:
    found = await service.get_record(
        session, tenant_id=member.tenant.id, namespace=namespace, key=key
    )
    value_text = json.dumps(found.value, indent=2, ensure_ascii=False)
    return _editor(request, namespace, key, value_text, found.version, is_new=False)


def _parsed(value_text: str) -> dict[str, Any]:
    try:
        value = json.loads(value_text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ValueError(f"not valid JSON: {exc.msg} ({where})") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object ({…})")
    return value


@router.post("/context-save")
async def save(
    request: Request,
    member: Editor,
    session: SessionDep,
    namespace: Annotated[str, Form(max_length=200)],
    key: Annotated[str, Form(max_length=400)],
    value: Text,
    version: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Create (no version) or replace (the version the page showed) a record."""
    is_new = not version
    shown = None if is_new else int(version) if version.isdigit() else None

    def again(message: str, status_code: int) -> Response:
        return _editor(
            request,
            namespace,
            key,
            value,
            shown,
            is_new=is_new,
            error=message,
            status_code=status_code,
        )

    if not re.fullmatch(NAMESPACE_PATTERN, namespace):
        return again("Namespace: lowercase letters, digits, `.`, `_` and `-`.", 422)
    if (problem := key_problem(key)) is not None:
        return again(f"Key: {problem}", 422)
    try:
        encoded = encode_value(_parsed(value))
    except ValueProblem as problem:  # a ValueError too: the more precise one first
        return again(f"Value: {problem.message}", 413 if problem.too_large else 422)
    except ValueError as exc:
        return again(f"Value: {exc}", 422)
    precondition = (
        service.Precondition(create_only=True)
        if is_new
        else service.Precondition(expected_version=shown)
    )
    try:
        result = await service.put_record(
            session,
            tenant_id=member.tenant.id,
            namespace=namespace,
            key=key,
            encoded=encoded,
            actor=member.actor,
            precondition=precondition,
        )
    except Problem as problem:
        await session.rollback()
        return again(problem.detail, problem.status)
    target = f"/ui/context/{namespace}/{key}"
    return flash(request, redirect(target), f"Saved version {result.record.version}.")


@router.post("/context-delete")
async def delete(
    request: Request,
    member: Editor,
    session: SessionDep,
    namespace: Annotated[str, Form(pattern=NAMESPACE_PATTERN)],
    key: Annotated[str, Form(max_length=200)],
    version: Annotated[int, Form(ge=1)],
) -> Response:
    await service.delete_record(
        session,
        tenant_id=member.tenant.id,
        namespace=namespace,
        key=key,
        actor=member.actor,
        expected_version=version,
    )
    return flash(request, redirect(f"/ui/context/{namespace}"), f"Deleted `{key}`.")
