"""Members and roles: adding people to the tenant, changing their role, removing them. Only an
owner may hand out or take away the owner role; a new account's generated password is shown
once, in the response that added it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Problem
from promptlogic.tenancy import members as member_service
from promptlogic.tenancy.models import Tenant
from promptlogic.tenancy.roles import ROLES, Role
from promptlogic.ui.routes.settings.common import Errors, Text, failed
from promptlogic.ui.sessions import SignedIn
from promptlogic.ui.web import Admin, flash, page, redirect

router = APIRouter()

UserId = Annotated[uuid.UUID, Path()]


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
        errors, status = await failed(session, exc, "role" if exc.status == 403 else "email")
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
