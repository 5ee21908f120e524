"""Routes of tenancy: who am I, and API keys."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Forbidden
from promptlogic.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from promptlogic.tenancy import service
from promptlogic.tenancy.auth import AdminPrincipal, PrincipalDep
from promptlogic.tenancy.roles import ordered
from promptlogic.tenancy.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    KeyRef,
    MeOut,
    TenantOut,
)

router = APIRouter(prefix="/v1", tags=["tenancy"])


@router.get("/me")
async def me(principal: PrincipalDep) -> MeOut:
    """The tenant, key and scopes behind the API key of this request."""
    if principal.rule_set is not None:  # an app's end user has no business with its account
        raise Forbidden("A rule-set token reaches only the rules of its set.")
    return MeOut(
        tenant=TenantOut(
            id=principal.tenant_id, slug=principal.tenant_slug, name=principal.tenant_name
        ),
        key=KeyRef(id=principal.key_id, name=principal.key_name),
        scopes=ordered(principal.scopes),
    )


@router.get("/api-keys")
async def list_api_keys(
    principal: AdminPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    include_revoked: bool = False,
) -> Page[ApiKeyOut]:
    """The tenant's API keys, newest first (secrets are never shown again)."""
    keys, next_cursor = await service.list_api_keys(
        session,
        tenant_id=principal.tenant_id,
        limit=limit,
        cursor=cursor,
        include_revoked=include_revoked,
    )
    return Page(items=[ApiKeyOut.model_validate(k) for k in keys], next_cursor=next_cursor)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, principal: AdminPrincipal, session: SessionDep, response: Response
) -> ApiKeyCreated:
    """Create an API key. The key is in this response only: store it now."""
    created = await service.create_api_key(
        session,
        tenant_id=principal.tenant_id,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        actor=principal.actor,
    )
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(created.key).model_dump(), "api_key": created.plaintext}
    )


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: uuid.UUID, principal: AdminPrincipal, session: SessionDep) -> None:
    """Revoke an API key; every worker refuses it from the moment this returns."""
    await service.revoke_api_key(
        session, tenant_id=principal.tenant_id, key_id=key_id, actor=principal.actor
    )
