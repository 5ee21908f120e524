"""Routes of providers (admin) and the model catalog: thin wrappers over the services."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from promptlogic.db.engine import SessionDep
from promptlogic.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.providers import catalog, service
from promptlogic.providers.catalog import ModelEntry
from promptlogic.providers.schemas import (
    MODEL_PATTERN,
    ModelOut,
    PriceIn,
    ProviderCreate,
    ProviderOut,
    ProviderUpdate,
)
from promptlogic.tenancy.auth import AdminPrincipal, ReadPrincipal

router = APIRouter(prefix="/v1/providers", tags=["providers"])
models_router = APIRouter(prefix="/v1/models", tags=["models"])

ProviderPath = Annotated[str, Path(pattern=NAME_PATTERN, description="The connection's name.")]
ModelPath = Annotated[str, Path(pattern=MODEL_PATTERN, description="A model name.")]


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


@router.get("")
async def list_providers(
    principal: AdminPrincipal,
    session: SessionDep,
    response: Response,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ProviderOut]:
    """The tenant's provider connections by name (credentials are never shown)."""
    found, next_cursor = await service.list_connections(
        session, tenant_id=principal.tenant_id, limit=limit, cursor=cursor
    )
    _no_store(response)
    return Page(items=[service.to_out(c) for c in found], next_cursor=next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_provider(
    body: ProviderCreate,
    principal: AdminPrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
) -> ProviderOut:
    """Add a provider connection; its API key and header values are stored encrypted."""
    connection = await service.create_connection(
        session,
        tenant_id=principal.tenant_id,
        body=body,
        box=request.app.state.secret_box,
        actor=principal.actor,
    )
    _no_store(response)
    return service.to_out(connection)


@router.get("/{provider}")
async def get_provider(
    provider: ProviderPath, principal: AdminPrincipal, session: SessionDep, response: Response
) -> ProviderOut:
    """One provider connection."""
    connection = await service.get_connection(session, tenant_id=principal.tenant_id, name=provider)
    _no_store(response)
    return service.to_out(connection)


@router.patch("/{provider}")
async def update_provider(
    provider: ProviderPath,
    body: ProviderUpdate,
    principal: AdminPrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
) -> ProviderOut:
    """Change a connection; every worker rebuilds its client for it."""
    connection = await service.update_connection(
        session,
        tenant_id=principal.tenant_id,
        name=provider,
        body=body,
        box=request.app.state.secret_box,
        actor=principal.actor,
    )
    _no_store(response)
    return service.to_out(connection)


@router.delete("/{provider}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_provider(
    provider: ProviderPath, principal: AdminPrincipal, session: SessionDep
) -> None:
    """Delete a connection; runs that name it fail with a 422 from then on."""
    await service.delete_connection(
        session, tenant_id=principal.tenant_id, name=provider, actor=principal.actor
    )


def _model_out(entry: ModelEntry) -> ModelOut:
    return ModelOut(
        name=entry.name,
        input_per_million=entry.input_per_million,
        output_per_million=entry.output_per_million,
        source=entry.source,  # type: ignore[arg-type]
        updated_at=entry.updated_at,
    )


@models_router.get("")
async def list_models(
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ModelOut]:
    """The tenant's model catalog by name: list prices per million tokens, with its own
    prices in place of (or added to) the catalog's."""
    entries, next_cursor = await catalog.list_models(
        session, tenant_id=principal.tenant_id, limit=limit, cursor=cursor
    )
    return Page(items=[_model_out(e) for e in entries], next_cursor=next_cursor)


@models_router.put("/{model:path}")
async def set_model_price(
    model: ModelPath, body: PriceIn, principal: AdminPrincipal, session: SessionDep
) -> ModelOut:
    """Set the tenant's price for a model (USD per million input and output tokens)."""
    entry = await catalog.set_price(
        session,
        tenant_id=principal.tenant_id,
        model=model,
        input_per_million=body.input_per_million,
        output_per_million=body.output_per_million,
        actor=principal.actor,
    )
    return _model_out(entry)


@models_router.delete("/{model:path}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_model_price(
    model: ModelPath, principal: AdminPrincipal, session: SessionDep
) -> None:
    """Remove the tenant's own price for a model; the catalog's applies again."""
    await catalog.remove_price(
        session, tenant_id=principal.tenant_id, model=model, actor=principal.actor
    )
