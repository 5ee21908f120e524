"""Reading the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from promptlogic.audit import service
from promptlogic.audit.schemas import AuditEventOut
from promptlogic.db.engine import SessionDep
from promptlogic.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from promptlogic.tenancy.auth import AdminPrincipal
from promptlogic.validation import SINGLE_LINE_PATTERN

router = APIRouter(prefix="/v1", tags=["audit"])

Filter = Annotated[str | None, Query(max_length=200, pattern=SINGLE_LINE_PATTERN)]


@router.get("/audit")
async def list_audit_events(
    principal: AdminPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    action: Filter = None,
    target_type: Filter = None,
    target_id: Filter = None,
) -> Page[AuditEventOut]:
    """The tenant's audit trail, newest first, optionally filtered."""
    events, next_cursor = await service.list_events(
        session,
        tenant_id=principal.tenant_id,
        limit=limit,
        cursor=cursor,
        action=action,
        target_type=target_type,
        target_id=target_id,
    )
    return Page(items=[AuditEventOut.of(e) for e in events], next_cursor=next_cursor)
