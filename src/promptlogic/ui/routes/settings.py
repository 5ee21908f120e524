"""Settings, for admins only: API keys, provider connections, model prices, usage limits,
members and roles, and the audit log.

Each form is a thin layer over the API's services, validated by the API's own body models, so
the browser and the API accept exactly the same values. Secrets go one way: a new API key is
shown once, in the response that created it; a provider's key and header values are never
rendered back, not even into a form that failed.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.db.engine import SessionDep
from promptlogic.errors import InvalidInput, NotFound, Problem
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.providers import catalog
from promptlogic.providers import service as providers
from promptlogic.providers.models import ProviderConnection
from promptlogic.providers.schemas import (
    MODEL_PATTERN,
    Kind,
    PriceIn,
    ProviderCreate,
    ProviderOut,
    ProviderUpdate,
)
from promptlogic.tenancy import members as member_service
from promptlogic.tenancy import service as tenancy
from promptlogic.tenancy.models import Tenant
from promptlogic.tenancy.roles import ROLES, SCOPES, Role
from promptlogic.tenancy.schemas import ApiKeyCreate
from promptlogic.ui.sessions import SignedIn
from promptlogic.ui.web import Admin, flash, page, redirect
from promptlogic.usage import service as usage
from promptlogic.usage.router import LimitsIn
from promptlogic.validation import SINGLE_LINE_PATTERN

router = APIRouter()

PAGE_SIZE = 50
MODEL_PAGE_SIZE = 100
KINDS: tuple[str, ...] = get_args(Kind)
KNOWN_ACTIONS = (
    "api_key.create",
    "api_key.revoke",
    "membership.create",
    "membership.delete",
    "membership.update",
    "model_price.remove",
    "model_price.set",
    "prompt.archive",
    "prompt.create",
    "prompt.label.move",
    "prompt.update",
    "prompt.version.create",
    "provider.create",
    "provider.delete",
    "provider.update",
    "usage_limits.set",
)

Text = Annotated[str, Form(max_length=2000)]
Secret = Annotated[str, Form(max_length=20_000)]
Cursor = Annotated[str | None, Query(max_length=500)]
Filter = Annotated[str, Query(max_length=200, pattern=SINGLE_LINE_PATTERN)]
KeyId = Annotated[uuid.UUID, Path()]
UserId = Annotated[uuid.UUID, Path()]
ProviderName = Annotated[str, Path(pattern=NAME_PATTERN)]
Errors = dict[str, str]


# Errors: one message per form field, from a pydantic model or a service's Problem

# Where pydantic's wording is about its types rather than the form.
PLAINER = {("scopes", "too_short"): "choose one or more"}


def _validation_errors(exc: ValidationError) -> Errors:
    errors: Errors = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        message = PLAINER.get((field, error["type"]), str(error["msg"]))
        errors.setdefault(field, message.removeprefix("Value error, "))
    return errors


def _problem_errors(exc: Problem, field: str) -> Errors:
    if not exc.errors:
        return {field: exc.detail}
    return {str(e["field"]).removeprefix("body."): str(e["message"]) for e in exc.errors}


async def _failed(session: AsyncSession, exc: Exception, field: str) -> tuple[Errors, int]:
    """Undo the attempt; the form's errors (a Problem naming no field is put on `field`) and
    the status to answer with."""
    await session.rollback()
    if isinstance(exc, ValidationError):
        return _validation_errors(exc), 422
    assert isinstance(exc, Problem)
    return _problem_errors(exc, field), exc.status


def _usd(amount: Decimal) -> str:
    """An amount without the column's trailing zeros: 0.15, not 0.150000; 100, not 1E+2."""
    return f"{amount.normalize():f}"


def _or_none(value: str) -> str | None:
    value = value.strip()
    return value or None


# The index


@router.get("/settings")
async def settings_index(request: Request, member: Admin) -> Response:
    return page(request, "settings/index.html")


# API keys


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
        errors, status = await _failed(session, exc, "name")
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


# Provider connections


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
        "base_url": _or_none(base_url),
        "api_key": api_key.strip() or None,
        "api_version": _or_none(api_version),
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
        errors, status = await _failed(session, exc, "name")
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
        "base_url": _or_none(base_url),
        "api_version": _or_none(api_version),
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
        errors, status = await _failed(session, exc, "is_default")
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


# Model prices


async def _models_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    *,
    cursor: str | None,
    values: dict[str, str],
    errors: Errors,
    status: int = 200,
) -> Response:
    entries, next_cursor = await catalog.list_models(
        session, tenant_id=member.tenant.id, limit=MODEL_PAGE_SIZE, cursor=cursor
    )
    context = {
        "entries": entries,
        "next_cursor": next_cursor,
        "values": values,
        "errors": errors,
        "usd": _usd,
    }
    return page(request, "settings/models.html", context, status_code=status)


@router.get("/settings/models")
async def models(
    request: Request,
    member: Admin,
    session: SessionDep,
    cursor: Cursor = None,
    model: Filter = "",
    input_price: Annotated[str, Query(alias="input", max_length=50)] = "",
    output_price: Annotated[str, Query(alias="output", max_length=50)] = "",
) -> Response:
    """The catalog; `model`, `input` and `output` fill the price form (the rows' "Set price")."""
    values = {"model": model, "input_per_million": input_price, "output_per_million": output_price}
    return await _models_page(request, member, session, cursor=cursor, values=values, errors={})


def _model_name(text: str) -> str:
    name = text.strip()
    if not re.fullmatch(MODEL_PATTERN, name):
        raise InvalidInput.field(
            "model", "use up to 200 letters, digits and . _ : / @ + -, starting with a letter"
        )
    return name


@router.post("/settings/models")
async def set_model_price(
    request: Request,
    member: Admin,
    session: SessionDep,
    model: Text = "",
    input_per_million: Text = "",
    output_per_million: Text = "",
) -> Response:
    values = {
        "model": model,
        "input_per_million": input_per_million,
        "output_per_million": output_per_million,
    }
    try:
        body = PriceIn.model_validate(
            {
                "input_per_million": input_per_million.strip(),
                "output_per_million": output_per_million.strip(),
            }
        )
        entry = await catalog.set_price(
            session,
            tenant_id=member.tenant.id,
            model=_model_name(model),
            input_per_million=body.input_per_million,
            output_per_million=body.output_per_million,
            actor=member.actor,
        )
    except (ValidationError, Problem) as exc:
        errors, status = await _failed(session, exc, "model")
        return await _models_page(
            request, member, session, cursor=None, values=values, errors=errors, status=status
        )
    message = (
        f"Priced {entry.name} at ${entry.input_per_million} in and "
        f"${entry.output_per_million} out per million tokens."
    )
    return flash(request, redirect("/ui/settings/models"), message)


@router.post("/settings/models/remove")
async def remove_model_price(
    request: Request, member: Admin, session: SessionDep, model: Text = ""
) -> Response:
    await catalog.remove_price(
        session, tenant_id=member.tenant.id, model=_model_name(model), actor=member.actor
    )
    message = f"Removed your price for {model.strip()}; the catalog's applies again, if any."
    return flash(request, redirect("/ui/settings/models"), message)


# Usage limits


async def _limits_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    *,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
    status: int = 200,
) -> Response:
    limits = await usage.get_limits(session, tenant_id=member.tenant.id)
    spent = await usage.spent_this_month(session, tenant_id=member.tenant.id)
    if values is None:
        cap, rpm = limits.monthly_spend_cap, limits.requests_per_minute
        values = {
            "requests_per_minute": "" if rpm is None else str(rpm),
            "monthly_spend_cap": "" if cap is None else _usd(cap),
        }
    context = {
        "limits": limits,
        "spent": spent,
        "values": values,
        "errors": errors or {},
        "usd": _usd,
    }
    return page(request, "settings/limits.html", context, status_code=status)


@router.get("/settings/limits")
async def limits(request: Request, member: Admin, session: SessionDep) -> Response:
    return await _limits_page(request, member, session)


@router.post("/settings/limits")
async def set_limits(
    request: Request,
    member: Admin,
    session: SessionDep,
    requests_per_minute: Text = "",
    monthly_spend_cap: Text = "",
) -> Response:
    values = {"requests_per_minute": requests_per_minute, "monthly_spend_cap": monthly_spend_cap}
    try:
        body = LimitsIn.model_validate(
            {
                "requests_per_minute": _or_none(requests_per_minute),
                "monthly_spend_cap": _or_none(monthly_spend_cap),
            }
        )
        await usage.set_limits(
            session,
            tenant_id=member.tenant.id,
            requests_per_minute=body.requests_per_minute,
            monthly_spend_cap=body.monthly_spend_cap,
            actor=member.actor,
        )
    except (ValidationError, Problem) as exc:
        errors, status = await _failed(session, exc, "requests_per_minute")
        return await _limits_page(
            request, member, session, values=values, errors=errors, status=status
        )
    return flash(request, redirect("/ui/settings/limits"), "Saved the usage limits.")


# Members and roles


def _offered_roles(member: SignedIn) -> list[str]:
    """Only an owner may hand out the owner role: the others are not offered it."""
    return [role for role in ROLES if role != Role.OWNER or member.role == Role.OWNER]


async def _members_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    *,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
    action_error: str | None = None,
    added: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The members, the form to add one (`errors` are its own), a row action's error, and a new
    account's generated password (`added`), shown in this response only."""
    context = {
        "members": await member_service.list_members(session, tenant_id=member.tenant.id),
        "roles": _offered_roles(member),
        "may_manage_owners": member.role == Role.OWNER,
        "values": values or {"email": "", "role": Role.VIEWER.value},
        "errors": errors or {},
        "action_error": action_error,
        "added": added,
    }
    return page(request, "settings/members.html", context, status_code=status)


@router.get("/settings/members")
async def members(request: Request, member: Admin, session: SessionDep) -> Response:
    return await _members_page(request, member, session)


@router.post("/settings/members")
async def add_member(
    request: Request, member: Admin, session: SessionDep, email: Text = "", role: Text = ""
) -> Response:
    values = {"email": email, "role": role}
    try:
        tenant = await session.get(Tenant, member.tenant.id)
        assert tenant is not None
        added = await member_service.add_member(
            session, tenant=tenant, email=email, role=role, actor=member.actor
        )
        added_email = added.user.email
    except Problem as exc:
        errors, status = await _failed(session, exc, "role" if exc.status == 403 else "email")
        return await _members_page(
            request, member, session, values=values, errors=errors, status=status
        )
    if added.generated_password is None:
        message = f"Added {added_email} as {role}; they sign in with their own password."
        return flash(request, redirect("/ui/settings/members"), message)
    # A new account: its password is shown in this response only.
    shown = {"email": added_email, "role": role, "password": added.generated_password}
    return await _members_page(request, member, session, added=shown, status=201)


def _after_member_change(member: SignedIn, user_id: uuid.UUID, stays_admin: bool) -> str:
    """Back to the members, unless the admin just took their own settings away."""
    if user_id == member.user_id and not stays_admin:
        return "/ui/prompts"
    return "/ui/settings/members"


@router.post("/settings/members/{user_id}/role")
async def change_role(
    request: Request, member: Admin, session: SessionDep, user_id: UserId, role: Text = ""
) -> Response:
    try:
        changed = await member_service.set_role(
            session, tenant_id=member.tenant.id, user_id=user_id, role=role, actor=member.actor
        )
    except Problem as exc:
        await session.rollback()
        return await _members_page(
            request, member, session, action_error=exc.detail, status=exc.status
        )
    message = f"{changed.email} is now {changed.role}."
    stays_admin = changed.role in (Role.OWNER, Role.ADMIN)
    return flash(request, redirect(_after_member_change(member, user_id, stays_admin)), message)


@router.post("/settings/members/{user_id}/remove")
async def remove_member(
    request: Request, member: Admin, session: SessionDep, user_id: UserId
) -> Response:
    try:
        removed = await member_service.remove_member(
            session, tenant_id=member.tenant.id, user_id=user_id, actor=member.actor
        )
    except Problem as exc:
        await session.rollback()
        return await _members_page(
            request, member, session, action_error=exc.detail, status=exc.status
        )
    message = f"Removed {removed.email} from {member.tenant.name}."
    return flash(request, redirect(_after_member_change(member, user_id, False)), message)


# The audit log


@router.get("/settings/audit")
async def audit_log(
    request: Request,
    member: Admin,
    session: SessionDep,
    cursor: Cursor = None,
    action: Filter = "",
    target_type: Filter = "",
    target_id: Filter = "",
) -> Response:
    filters = {
        "action": action.strip(),
        "target_type": target_type.strip(),
        "target_id": target_id.strip(),
    }
    events, next_cursor = await audit.list_events(
        session,
        tenant_id=member.tenant.id,
        limit=PAGE_SIZE,
        cursor=cursor,
        **{name: value or None for name, value in filters.items()},
    )
    context = {
        "events": events,
        "next_cursor": next_cursor,
        "filters": filters,
        "known_actions": KNOWN_ACTIONS,
    }
    return page(request, "settings/audit.html", context)
