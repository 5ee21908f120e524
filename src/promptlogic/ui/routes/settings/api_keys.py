"""API keys: listing, creating and revoking them. A new key's plaintext is shown once, in the
response that created it, never in a redirect or a cookie."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Problem
from promptlogic.tenancy import service as tenancy
from promptlogic.tenancy.roles import SCOPES
from promptlogic.tenancy.schemas import ApiKeyCreate
from promptlogic.ui.routes.settings.common import PAGE_SIZE, Cursor, Errors, Text, failed
from promptlogic.ui.sessions import SignedIn
from promptlogic.ui.web import Admin, flash, page, redirect

router = APIRouter()

KeyId = Annotated[uuid.UUID, Path()]


async def _keys_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    *,
    cursor: str | None = None,
    values: dict[str, Any] | None = None,
    errors: Errors | None = None,
    status: int = 200,
) -> Response:
    keys, next_cursor = await tenancy.list_api_keys(
        session, tenant_id=member.tenant.id, limit=PAGE_SIZE, cursor=cursor, include_revoked=True
    )
    context = {
        "keys": keys,
        "next_cursor": next_cursor,
        "now": datetime.now(UTC),
        "scopes": SCOPES,
        "values": values or {"name": "", "scopes": [], "expires_at": ""},
        "errors": errors or {},
    }
    return page(request, "settings/api_keys.html", context, status_code=status)


@router.get("/settings/api-keys")
async def api_keys(
    request: Request, member: Admin, session: SessionDep, cursor: Cursor = None
) -> Response:
    return await _keys_page(request, member, session, cursor=cursor)


def _as_utc(text: str) -> datetime | str | None:
    """A `datetime-local` value, read as UTC (the form says so); anything else is left for
    the body model to refuse, naming the field."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return text
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.post("/settings/api-keys")
async def create_api_key(
    request: Request,
    member: Admin,
    session: SessionDep,
    name: Text = "",
    scopes: Annotated[list[str] | None, Form(max_length=10)] = None,
    expires_at: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    scopes = scopes or []
    values = {"name": name, "scopes": scopes, "expires_at": expires_at}
    try:
        body = ApiKeyCreate.model_validate(
            {"name": name, "scopes": scopes, "expires_at": _as_utc(expires_at)}
        )
        created = await tenancy.create_api_key(
            session,
            tenant_id=member.tenant.id,
            name=body.name,
            scopes=body.scopes,
            expires_at=body.expires_at,
            actor=member.actor,
        )
    except (ValidationError, Problem) as exc:
        errors, status = await failed(session, exc, "name")
        return await _keys_page(
            request, member, session, values=values, errors=errors, status=status
        )
    # The only time the key exists outside its hash: this response, never a redirect or cookie.
    context = {"key": created.key, "plaintext": created.plaintext}
    return page(request, "settings/api_key_created.html", context, status_code=201)


@router.post("/settings/api-keys/{key_id}/revoke")
async def revoke_api_key(
    request: Request, member: Admin, session: SessionDep, key_id: KeyId
) -> Response:
    key = await tenancy.revoke_api_key(
        session, tenant_id=member.tenant.id, key_id=key_id, actor=member.actor
    )
    message = f"Revoked the key “{key.name}” ({key.prefix}): it no longer works."
    return flash(request, redirect("/ui/settings/api-keys"), message)
