"""A tenant's members: list them, add one, change a role, remove one. No HTTP; callers commit.

A tenant always keeps an owner, and only an owner may make someone an owner or change or
remove an owner, so an admin cannot take the tenant away from the people who own it. Who may
is read from the database in the same transaction, not from what the caller believed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.errors import Conflict, Forbidden, InvalidInput, NotFound
from promptlogic.tenancy import service
from promptlogic.tenancy.models import Membership, Tenant, User
from promptlogic.tenancy.roles import ROLES, Role


@dataclass(frozen=True, slots=True)
class MemberInfo:
    user_id: uuid.UUID
    email: str
    role: Role
    since: datetime


async def list_members(session: AsyncSession, *, tenant_id: uuid.UUID) -> list[MemberInfo]:
    """Every member of the tenant, by email."""
    rows = await session.execute(
        Membership.for_tenant(
            tenant_id, User.id, User.email, Membership.role, Membership.created_at
        )
        .join(User, User.id == Membership.user_id)
        .order_by(User.email)
    )
    return [MemberInfo(user_id, email, Role(role), since) for user_id, email, role, since in rows]


async def actor_is_owner(session: AsyncSession, *, tenant_id: uuid.UUID, actor: Actor) -> bool:
    """An operator at the CLI, or a user who owns the tenant now; never an API key."""
    if actor.kind == "operator":
        return True
    if actor.kind != "user" or actor.id is None:
        return False
    try:
        user_id = uuid.UUID(actor.id)
    except ValueError:
        return False
    role: str | None = await session.scalar(
        Membership.for_tenant(tenant_id, Membership.role).where(Membership.user_id == user_id)
    )
    return role == Role.OWNER


async def _require_owner(
    session: AsyncSession, *, tenant_id: uuid.UUID, actor: Actor, what: str
) -> None:
    if not await actor_is_owner(session, tenant_id=tenant_id, actor=actor):
        raise Forbidden(f"Only an owner may {what}.")


async def add_member(
    session: AsyncSession, *, tenant: Tenant, email: str, role: str, actor: Actor
) -> service.NewMember:
    """`service.add_member` (a new user gets a generated password), refusing to make an owner
    unless the actor is one."""
    if role == Role.OWNER:
        await _require_owner(session, tenant_id=tenant.id, actor=actor, what="add an owner")
    added = await service.add_member(
        session, tenant=tenant, email=email, role=role, password=None, actor=actor
    )
    await session.flush()  # the caller's next query (the list of members) sees them
    return added


async def _membership(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[Membership, str]:
    row = (
        await session.execute(
            Membership.for_tenant(tenant_id, Membership, User.email)
            .join(User, User.id == Membership.user_id)
            .where(Membership.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"No member {user_id} in this tenant.")
    return row[0], row[1]


async def _keep_an_owner(session: AsyncSession, membership: Membership, what: str) -> None:
    """409 when `membership` is the tenant's last owner. The owners' rows are locked, so two
    owners demoting each other at once cannot both succeed."""
    owners = await session.scalars(
        Membership.for_tenant(membership.tenant_id, Membership.id)
        .where(Membership.role == Role.OWNER)
        .with_for_update()
    )
    if not any(owner_id != membership.id for owner_id in owners):
        raise Conflict(
            f"This is the tenant's last owner: make someone else an owner before {what}."
        )


def _info(membership: Membership, email: str) -> MemberInfo:
    return MemberInfo(membership.user_id, email, Role(membership.role), membership.created_at)


async def set_role(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, role: str, actor: Actor
) -> MemberInfo:
    """Change a member's role; the same role again is a no-op. Takes effect on their next
    request, in the UI and the API alike."""
    if role not in ROLES:
        raise InvalidInput.field("role", f"must be one of {', '.join(ROLES)}")
    membership, email = await _membership(session, tenant_id, user_id)
    before = membership.role
    if role == before:
        return _info(membership, email)
    if Role.OWNER in (before, role):
        what = "change an owner's role" if before == Role.OWNER else "make someone an owner"
        await _require_owner(session, tenant_id=tenant_id, actor=actor, what=what)
    if before == Role.OWNER:
        await _keep_an_owner(session, membership, "demoting this one")
    membership.role = role
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="membership.update",
        target_type="user",
        target_id=str(user_id),
        before={"email": email, "role": before},
        after={"email": email, "role": role},
    )
    return _info(membership, email)


async def remove_member(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, actor: Actor
) -> MemberInfo:
    """Take a user out of the tenant (the account stays, for their other tenants). Their UI
    sessions lose the tenant on their next request: the session loader reads memberships."""
    membership, email = await _membership(session, tenant_id, user_id)
    if membership.role == Role.OWNER:
        await _require_owner(session, tenant_id=tenant_id, actor=actor, what="remove an owner")
        await _keep_an_owner(session, membership, "removing this one")
    removed = _info(membership, email)
    await session.delete(membership)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="membership.delete",
        target_type="user",
        target_id=str(user_id),
        before={"email": email, "role": removed.role.value},
    )
    return removed
