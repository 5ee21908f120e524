"""The members service: tenant scoping, who may touch owners, and that a tenant keeps an owner
even when two owners step down at the same moment."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from promptlogic.audit.service import OPERATOR, Actor
from promptlogic.db.engine import commit
from promptlogic.errors import Conflict, Forbidden, InvalidInput, NotFound
from promptlogic.tenancy import members
from promptlogic.tenancy.models import Membership, User
from promptlogic.tenancy.roles import Role
from tests.factories import make_tenant
from tests.ui.support import make_member


async def user_id(session, email: str) -> uuid.UUID:
    found = await session.scalar(select(User.id).where(User.email == email))
    assert found is not None
    return found


def as_user(user: uuid.UUID) -> Actor:
    return Actor(kind="user", id=str(user), name="someone")


async def test_members_are_listed_by_email_and_only_the_tenants_own(session, tenant):
    await make_member(session, tenant, "viewer", email="zoe@acme.example")
    await make_member(session, tenant, "owner", email="ada@acme.example")
    other = await make_tenant(session, "globex")
    await make_member(session, other, "admin", email="eve@globex.example")
    listed = await members.list_members(session, tenant_id=tenant.id)
    assert [(m.email, m.role) for m in listed] == [
        ("ada@acme.example", Role.OWNER),
        ("zoe@acme.example", Role.VIEWER),
    ]


async def test_another_tenants_member_is_not_found(session, tenant):
    other = await make_tenant(session, "globex")
    await make_member(session, other, "viewer", email="eve@globex.example")
    eve = await user_id(session, "eve@globex.example")
    with pytest.raises(NotFound):
        await members.set_role(
            session, tenant_id=tenant.id, user_id=eve, role="admin", actor=OPERATOR
        )
    with pytest.raises(NotFound):
        await members.remove_member(session, tenant_id=tenant.id, user_id=eve, actor=OPERATOR)


async def test_an_unknown_role_is_refused(session, tenant):
    await make_member(session, tenant, "viewer", email="zoe@acme.example")
    zoe = await user_id(session, "zoe@acme.example")
    with pytest.raises(InvalidInput) as refused:
        await members.set_role(
            session, tenant_id=tenant.id, user_id=zoe, role="god", actor=OPERATOR
        )
    assert refused.value.errors is not None
    assert refused.value.errors[0]["field"] == "role"


async def test_who_counts_as_an_owner(session, tenant, admin):
    await make_member(session, tenant, "owner", email="ada@acme.example")
    await make_member(session, tenant, "admin", email="bob@acme.example")
    ada = await user_id(session, "ada@acme.example")
    bob = await user_id(session, "bob@acme.example")

    async def is_owner(actor: Actor) -> bool:
        return await members.actor_is_owner(session, tenant_id=tenant.id, actor=actor)

    assert await is_owner(OPERATOR)
    assert await is_owner(as_user(ada))
    assert not await is_owner(as_user(bob))
    assert not await is_owner(Actor(kind="api_key", id=str(admin.key.id), name="deployer"))
    assert not await is_owner(Actor(kind="user", id="not-a-uuid", name="?"))
    # An owner of another tenant owns nothing here.
    other = await make_tenant(session, "globex")
    await make_member(session, other, "owner", email="eve@globex.example")
    assert not await is_owner(as_user(await user_id(session, "eve@globex.example")))


async def test_an_admin_may_not_touch_an_owner(session, tenant):
    await make_member(session, tenant, "owner", email="ada@acme.example")
    await make_member(session, tenant, "owner", email="cy@acme.example")
    await make_member(session, tenant, "admin", email="bob@acme.example")
    await make_member(session, tenant, "viewer", email="zoe@acme.example")
    ada, bob, zoe = [
        await user_id(session, f"{name}@acme.example") for name in ("ada", "bob", "zoe")
    ]
    with pytest.raises(Forbidden):
        await members.set_role(
            session, tenant_id=tenant.id, user_id=zoe, role="owner", actor=as_user(bob)
        )
    with pytest.raises(Forbidden):
        await members.set_role(
            session, tenant_id=tenant.id, user_id=ada, role="admin", actor=as_user(bob)
        )
    with pytest.raises(Forbidden):
        await members.remove_member(session, tenant_id=tenant.id, user_id=ada, actor=as_user(bob))
    # An owner may, while another owner remains.
    await members.remove_member(session, tenant_id=tenant.id, user_id=ada, actor=as_user(ada))
    await commit(session)
    roles = await session.scalars(
        Membership.for_tenant(tenant.id, Membership.role).where(Membership.role == "owner")
    )
    assert list(roles) == ["owner"]


async def test_two_owners_stepping_down_at_once_leave_one_owner(app, session, tenant):
    await make_member(session, tenant, "owner", email="ada@acme.example")
    await make_member(session, tenant, "owner", email="cy@acme.example")
    ada = await user_id(session, "ada@acme.example")
    cy = await user_id(session, "cy@acme.example")

    async with app.state.sessionmaker() as first, app.state.sessionmaker() as second:
        await members.set_role(
            first, tenant_id=tenant.id, user_id=ada, role="admin", actor=as_user(ada)
        )
        racing = asyncio.create_task(
            members.set_role(
                second, tenant_id=tenant.id, user_id=cy, role="admin", actor=as_user(cy)
            )
        )
        await asyncio.sleep(0.3)
        assert not racing.done()  # waits for the first to finish with the owners' rows
        await commit(first)
        with pytest.raises(Conflict):
            await racing
        await second.rollback()

    owners = await session.scalars(
        Membership.for_tenant(tenant.id, Membership.user_id).where(Membership.role == "owner")
    )
    assert list(owners) == [cy]
