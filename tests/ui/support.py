"""Helpers for the UI's tests: members with passwords, and signing in over HTTP."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit.service import OPERATOR
from promptlogic.tenancy.models import Tenant, User
from promptlogic.tenancy.service import add_member

PASSWORD = "correct horse battery staple"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class MemberFixture:
    email: str
    password: str
    role: str


async def make_member(
    session: AsyncSession, tenant: Tenant, role: str, email: str | None = None
) -> MemberFixture:
    """A user with `role` in `tenant` (a new user gets PASSWORD; an existing one keeps it)."""
    email = email or f"{role}@{tenant.slug}.example"
    password = None if await _exists(session, email) else PASSWORD
    await add_member(
        session, tenant=tenant, email=email, role=role, password=password, actor=OPERATOR
    )
    await session.commit()
    return MemberFixture(email, PASSWORD, role)


async def _exists(session: AsyncSession, email: str) -> bool:
    return await session.scalar(select(User.id).where(User.email == email)) is not None


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF_INPUT.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, member: MemberFixture) -> str:
    """Sign `client` in as `member` (cookies kept by the client); returns the session's CSRF
    token, read from the page the sign-in lands on."""
    form = await client.get("/ui/login")
    assert form.status_code == 200, form.text
    answer = await client.post(
        "/ui/login",
        data={"email": member.email, "password": member.password, "csrf_token": csrf_of(form.text)},
    )
    assert answer.status_code == 303, answer.text
    home = await client.get(answer.headers["location"])  # the prompts; a rule author's rules
    assert home.status_code == 200, home.text
    return csrf_of(home.text)
