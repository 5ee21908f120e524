"""The `tenants`, `keys` and `users` commands: platform operations on a tenant and its access."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit.service import OPERATOR
from promptlogic.cli.common import JsonOption, emit, fail, in_transaction
from promptlogic.tenancy import service
from promptlogic.tenancy.roles import ROLES, SCOPES

tenants_app = typer.Typer(help="Manage tenants (platform operators).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users and their roles.", no_args_is_help=True)


def _scopes(value: str) -> list[str]:
    scopes = [s.strip() for s in value.split(",") if s.strip()]
    if not scopes or set(scopes) - set(SCOPES):
        fail(f"--scopes takes a comma-separated list from: {', '.join(SCOPES)}")
    return scopes


@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Short unique id, e.g. acme.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    admin_email: Annotated[str, typer.Option(help="Email of the tenant's first owner.")],
    admin_password: Annotated[
        str | None, typer.Option(help="Their password; generated and shown once if omitted.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a tenant with an owner and an admin-scoped API key (shown once)."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        tenant = await service.create_tenant(session, slug=slug, name=name)
        owner = await service.add_member(
            session,
            tenant=tenant,
            email=admin_email,
            role="owner",
            password=admin_password,
            actor=OPERATOR,
        )
        created = await service.create_api_key(
            session, tenant_id=tenant.id, name="admin key", scopes=["admin"], actor=OPERATOR
        )
        result = {
            "tenant": {"id": str(tenant.id), "slug": tenant.slug, "name": tenant.name},
            "admin_email": owner.user.email,
            "api_key": created.plaintext,
        }
        if owner.generated_password:
            result["admin_password"] = owner.generated_password
        return result

    result = in_transaction(work)
    text = f"created tenant {slug}\n  owner:   {result['admin_email']}"
    if "admin_password" in result:
        text += f" (password: {result['admin_password']}; shown only now)"
    text += f"\n  API key: {result['api_key']}  (admin scope; shown only now)"
    emit(result, as_json, text)


@tenants_app.command("list")
def tenants_list(as_json: JsonOption = False) -> None:
    """List every tenant."""
    tenants = in_transaction(service.list_tenants)
    rows = [
        {"id": str(t.id), "slug": t.slug, "name": t.name, "created_at": t.created_at.isoformat()}
        for t in tenants
    ]
    emit(rows, as_json, "\n".join(f"{r['slug']}\t{r['name']}\t{r['id']}" for r in rows))


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
    name: Annotated[str, typer.Option(help="What the key is for.")],
    scopes: Annotated[
        str, typer.Option(help=f"Comma-separated, from: {', '.join(SCOPES)}.")
    ] = "run,read",
    expires_at: Annotated[
        datetime | None, typer.Option(help="Expiry (ISO 8601, UTC when no zone is given).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key for a tenant; it is printed once and stored only as a hash."""
    scope_list = _scopes(scopes)
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)

    async def work(session: AsyncSession) -> dict[str, Any]:
        found = await service.get_tenant_by_slug(session, tenant)
        created = await service.create_api_key(
            session,
            tenant_id=found.id,
            name=name,
            scopes=scope_list,
            expires_at=expires_at,
            actor=OPERATOR,
        )
        return {
            "id": str(created.key.id),
            "api_key": created.plaintext,
            "tenant": tenant,
            "name": created.key.name,
            "scopes": created.key.scopes,
        }

    result = in_transaction(work)
    emit(result, as_json, f"{result['api_key']}\n(id {result['id']}; shown only now)")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id.")],
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key; every running worker refuses it at once."""
    try:
        parsed = uuid.UUID(key_id)
    except ValueError:
        fail(f"not a key id: {key_id!r}")

    async def work(session: AsyncSession) -> dict[str, Any]:
        tenant_id = await service.tenant_of_api_key(session, parsed)
        key = await service.revoke_api_key(
            session, tenant_id=tenant_id, key_id=parsed, actor=OPERATOR
        )
        return {"id": str(key.id), "revoked_at": key.revoked_at}

    result = in_transaction(work)
    emit(result, as_json, f"revoked {result['id']}")


@users_app.command("create")
def users_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
    email: Annotated[str, typer.Option(help="The user's email.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    password: Annotated[
        str | None, typer.Option(help="Password; generated and shown once if omitted.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user to a tenant with a role (creating the user if new)."""
    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}")

    async def work(session: AsyncSession) -> dict[str, Any]:
        found = await service.get_tenant_by_slug(session, tenant)
        member = await service.add_member(
            session, tenant=found, email=email, role=role, password=password, actor=OPERATOR
        )
        result = {"id": str(member.user.id), "email": member.user.email, "tenant": tenant}
        result["role"] = role
        if member.generated_password:
            result["password"] = member.generated_password
        return result

    result = in_transaction(work)
    text = f"added {result['email']} to {tenant} as {role}"
    if "password" in result:
        text += f" (password: {result['password']}; shown only now)"
    emit(result, as_json, text)
