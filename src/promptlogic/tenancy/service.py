"""Tenancy logic: tenants, users, memberships and API keys. No HTTP here; callers commit."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.db.notify import publish
from promptlogic.errors import Conflict, InvalidInput, NotFound
from promptlogic.pagination import decode_cursor, invalid_cursor, paginate
from promptlogic.tenancy import keys
from promptlogic.tenancy.auth import API_KEY_TOPIC
from promptlogic.tenancy.models import ApiKey, Membership, Tenant, User
from promptlogic.tenancy.passwords import MIN_PASSWORD_LENGTH, hash_password_async
from promptlogic.tenancy.roles import ROLES, SCOPES, Scope
from promptlogic.validation import as_utc, single_line

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_KEY_NAME = 100

V = TypeVar("V")


def _checked(field: str, check: Callable[[V], V], value: V) -> V:
    """Apply a shared check from `validation`, naming `field` in the 422 it raises."""
    try:
        return check(value)
    except ValueError as exc:
        raise InvalidInput.field(field, str(exc)) from None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    plaintext: str


# Tenants (platform operators only: there is no public sign-up)


async def create_tenant(session: AsyncSession, *, slug: str, name: str) -> Tenant:
    """Create a tenant; 409 when the slug is taken."""
    if not SLUG_PATTERN.match(slug):
        raise InvalidInput.field(
            "slug", "use 1-63 lowercase letters, digits and inner hyphens, e.g. `acme-corp`"
        )
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput.field("name", "must be 1-200 characters")
    if await session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise Conflict(f"A tenant with slug `{slug}` already exists.")
    tenant = Tenant(slug=slug, name=name)
    session.add(tenant)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant.id,
        actor=audit.OPERATOR,
        action="tenant.create",
        target_type="tenant",
        target_id=str(tenant.id),
        after={"slug": slug, "name": name},
    )
    return tenant


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list((await session.scalars(select(Tenant).order_by(Tenant.slug))).all())


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant:
    tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"No tenant with slug `{slug}`.")
    return tenant


# Users and memberships


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL_PATTERN.match(email):
        raise InvalidInput.field("email", "not an email address")
    return email


@dataclass(frozen=True, slots=True)
class NewMember:
    user: User
    generated_password: str | None
    """Set only when a new user was created without a password: show it once."""


async def add_member(
    session: AsyncSession,
    *,
    tenant: Tenant,
    email: str,
    role: str,
    password: str | None,
    actor: Actor,
) -> NewMember:
    """Give a user a role in `tenant`, creating the user if new; 409 if already a member.

    A password is set only on a new user (generated when not given). An existing user keeps
    theirs: adding them to another tenant must never lock them out of the first.
    """
    email = normalize_email(email)
    if role not in ROLES:
        raise InvalidInput.field("role", f"must be one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.field("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    user = await session.scalar(select(User).where(User.email == email))
    generated = None
    if user is None:
        if password is None:
            password = generated = secrets.token_urlsafe(12)
        user = User(email=email, password_hash=await hash_password_async(password))
        session.add(user)
        await session.flush()
    elif await session.scalar(
        Membership.for_tenant(tenant.id, Membership.id).where(Membership.user_id == user.id)
    ):
        raise Conflict(f"{email} is already a member of `{tenant.slug}`.")
    elif password is not None:
        raise InvalidInput.field(
            "password", f"{email} already has an account; their password is not changed here"
        )
    session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role))
    await audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="membership.create",
        target_type="user",
        target_id=str(user.id),
        after={"email": email, "role": role},
    )
    return NewMember(user=user, generated_password=generated)


# API keys


def _key_summary(key: ApiKey) -> dict[str, object]:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


async def create_api_key(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    scopes: list[Scope] | list[str],
    actor: Actor,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """Mint a key; the plaintext exists only in the returned value, the row holds its hash."""
    name = _checked("name", single_line, name)
    if not 1 <= len(name) <= MAX_KEY_NAME:
        raise InvalidInput.field("name", f"must be 1-{MAX_KEY_NAME} characters")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidInput.field("scopes", f"choose one or more of {', '.join(SCOPES)}")
    if expires_at is not None:
        expires_at = _checked("expires_at", as_utc, expires_at)
        if expires_at <= datetime.now(UTC):
            raise InvalidInput.field("expires_at", "must be in the future")
    new = keys.generate()
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
        scopes=[Scope(s).value for s in scopes],
        created_by=actor.name,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    await session.refresh(key, ["created_at"])
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="api_key.create",
        target_type="api_key",
        target_id=str(key.id),
        after=_key_summary(key),
    )
    return CreatedKey(key=key, plaintext=new.plaintext)


async def list_api_keys(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    limit: int,
    cursor: str | None = None,
    include_revoked: bool = False,
) -> tuple[list[ApiKey], str | None]:
    """A page of the tenant's keys, newest first."""
    statement = (
        ApiKey.for_tenant(tenant_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        .limit(limit + 1)
    )
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    if cursor is not None:
        created_at, key_id = decode_cursor(cursor, str, str)
        try:
            after = (as_utc(datetime.fromisoformat(created_at)), uuid.UUID(key_id))
        except ValueError:
            raise invalid_cursor() from None
        statement = statement.where(tuple_(ApiKey.created_at, ApiKey.id) < tuple_(*after))
    found = list((await session.scalars(statement)).all())
    return paginate(found, limit, lambda key: (key.created_at.isoformat(), str(key.id)))


async def get_api_key(session: AsyncSession, *, tenant_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    key = await session.scalar(ApiKey.for_tenant(tenant_id).where(ApiKey.id == key_id))
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    return key


async def revoke_api_key(
    session: AsyncSession, *, tenant_id: uuid.UUID, key_id: uuid.UUID, actor: Actor
) -> ApiKey:
    """Revoke a key on every worker at once (NOTIFY on commit). Revoking twice is a no-op."""
    key = await get_api_key(session, tenant_id=tenant_id, key_id=key_id)
    if key.revoked_at is not None:
        return key
    before = _key_summary(key)
    key.revoked_at = datetime.now(UTC)
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="api_key.revoke",
        target_type="api_key",
        target_id=str(key.id),
        before=before,
        after=_key_summary(key),
    )
    await publish(session, API_KEY_TOPIC, prefix=key.prefix, id=str(key.id))
    return key


async def tenant_of_api_key(session: AsyncSession, key_id: uuid.UUID) -> uuid.UUID:
    """For platform operators only: which tenant a key belongs to."""
    tenant_id = await session.scalar(select(ApiKey.tenant_id).where(ApiKey.id == key_id))
    if tenant_id is None:
        raise NotFound(f"No API key {key_id}.")
    return tenant_id
