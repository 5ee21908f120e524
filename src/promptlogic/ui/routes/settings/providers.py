"""Provider connections: listing, adding, editing and deleting them. A connection's API key and
header values are secrets: they go in through the forms and are never rendered back, not even
into a form that failed."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError

from promptlogic.db.engine import SessionDep
from promptlogic.errors import InvalidInput, NotFound, Problem
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.providers import service as providers
from promptlogic.providers.models import ProviderConnection
from promptlogic.providers.schemas import Kind, ProviderCreate, ProviderOut, ProviderUpdate
from promptlogic.ui.routes.settings.common import PAGE_SIZE, Cursor, Errors, Text, failed, or_none
from promptlogic.ui.web import Admin, flash, page, redirect

router = APIRouter()

KINDS: tuple[str, ...] = get_args(Kind)

Secret = Annotated[str, Form(max_length=20_000)]
ProviderName = Annotated[str, Path(pattern=NAME_PATTERN)]


@router.get("/settings/providers")
async def provider_list(
    request: Request, member: Admin, session: SessionDep, cursor: Cursor = None
) -> Response:
    connections, next_cursor = await providers.list_connections(
        session, tenant_id=member.tenant.id, limit=PAGE_SIZE, cursor=cursor
    )
    context = {
        "connections": [providers.to_out(c) for c in connections],
        "next_cursor": next_cursor,
    }
    return page(request, "settings/providers.html", context)


NEW_PROVIDER = {
    "name": "",
    "kind": "openai",
    "base_url": "",
    "timeout_seconds": "60",
    "api_version": "",
    "is_default": False,
}


def _provider_form(
    request: Request,
    *,
    values: dict[str, Any],
    errors: Errors,
    connection: ProviderOut | None = None,
    status: int = 200,
) -> Response:
    """The create form (no `connection`) or the edit form; secrets are never in `values`."""
    context = {"values": values, "errors": errors, "connection": connection, "kinds": KINDS}
    return page(request, "settings/provider_form.html", context, status_code=status)


@router.get("/settings/providers/new")
async def new_provider_form(request: Request, member: Admin) -> Response:
    return _provider_form(request, values=NEW_PROVIDER, errors={})


def _headers(text: str) -> dict[str, str]:
    """`Name: value` lines, blank ones skipped. The error never quotes a line: it is secret."""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        header, colon, value = line.partition(":")
        if not colon:
            raise InvalidInput.field("default_headers", "write one `Name: value` per line")
        headers[header.strip()] = value.strip()
    return headers


@router.post("/settings/providers")
async def create_provider(
    request: Request,
    member: Admin,
    session: SessionDep,
    name: Text = "",
    kind: Text = "",
    base_url: Text = "",
    api_key: Secret = "",
    default_headers: Secret = "",
    timeout_seconds: Text = "",
    api_version: Text = "",
    is_default: Text = "",
) -> Response:
    values = {
        "name": name,
        "kind": kind,
        "base_url": base_url,
        "timeout_seconds": timeout_seconds,
        "api_version": api_version,
        "is_default": bool(is_default),
    }
    fields: dict[str, Any] = {
        "name": name.strip(),
        "kind": kind,
        "base_url": or_none(base_url),
        "api_key": api_key.strip() or None,
        "api_version": or_none(api_version),
        "is_default": bool(is_default),
    }
    if timeout_seconds.strip():
        fields["timeout_seconds"] = timeout_seconds.strip()
    try:
        fields["default_headers"] = _headers(default_headers)
        body = ProviderCreate.model_validate(fields)
        connection = await providers.create_connection(
            session,
            tenant_id=member.tenant.id,
            body=body,
            box=request.app.state.secret_box,
            actor=member.actor,
        )
    except (ValidationError, Problem) as exc:
        errors, status = await failed(session, exc, "name")
        return _provider_form(request, values=values, errors=errors, status=status)
    message = f"Added the provider connection “{connection.name}”."
    return flash(request, redirect("/ui/settings/providers"), message)


def _values_of(connection: ProviderConnection) -> dict[str, Any]:
    return {
        "name": connection.name,
        "kind": connection.kind,
        "base_url": connection.base_url or "",
        "timeout_seconds": f"{connection.timeout_seconds:g}",
        "api_version": connection.api_version or "",
        "is_default": connection.is_default,
    }


@router.get("/settings/providers/{provider}/edit")
async def edit_provider_form(
    request: Request, member: Admin, session: SessionDep, provider: ProviderName
) -> Response:
    connection = await providers.get_connection(session, tenant_id=member.tenant.id, name=provider)
    out = providers.to_out(connection)
    return _provider_form(request, values=_values_of(connection), errors={}, connection=out)


@router.post("/settings/providers/{provider}/edit")
async def update_provider(
    request: Request,
    member: Admin,
    session: SessionDep,
    provider: ProviderName,
    kind: Text = "",
    base_url: Text = "",
    api_key: Secret = "",
    remove_api_key: Text = "",
    default_headers: Secret = "",
    remove_headers: Text = "",
    timeout_seconds: Text = "",
    api_version: Text = "",
    is_default: Text = "",
) -> Response:
    values = {
        "name": provider,
        "kind": kind,
        "base_url": base_url,
        "timeout_seconds": timeout_seconds,
        "api_version": api_version,
        "is_default": bool(is_default),
    }
    fields: dict[str, Any] = {
        "kind": kind,
        "base_url": or_none(base_url),
        "api_version": or_none(api_version),
        "is_default": bool(is_default),
    }
    if timeout_seconds.strip():
        fields["timeout_seconds"] = timeout_seconds.strip()
    # Empty secret fields keep what is stored; only an explicit tick removes it.
    if api_key.strip():
        fields["api_key"] = api_key.strip()
    elif remove_api_key:
        fields["api_key"] = None
    try:
        if default_headers.strip():
            fields["default_headers"] = _headers(default_headers)
        elif remove_headers:
            fields["default_headers"] = None
        body = ProviderUpdate.model_validate(fields)
        connection = await providers.update_connection(
            session,
            tenant_id=member.tenant.id,
            name=provider,
            body=body,
            box=request.app.state.secret_box,
            actor=member.actor,
        )
    except (ValidationError, Problem) as exc:
        if isinstance(exc, NotFound):
            raise
        errors, status = await failed(session, exc, "is_default")
        stored = await providers.get_connection(session, tenant_id=member.tenant.id, name=provider)
        out = providers.to_out(stored)
        return _provider_form(request, values=values, errors=errors, connection=out, status=status)
    message = f"Saved the provider connection “{connection.name}”."
    return flash(request, redirect("/ui/settings/providers"), message)


@router.post("/settings/providers/{provider}/delete")
async def delete_provider(
    request: Request, member: Admin, session: SessionDep, provider: ProviderName
) -> Response:
    await providers.delete_connection(
        session, tenant_id=member.tenant.id, name=provider, actor=member.actor
    )
    message = f"Deleted the provider connection “{provider}”. Runs that name it now fail."
    return flash(request, redirect("/ui/settings/providers"), message)
