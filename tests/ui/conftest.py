"""UI fixtures: signed-in HTTP clients per role, and a real browser on a live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.tenancy.models import Tenant
from tests.conftest import client_for
from tests.live import serving
from tests.ui.support import MemberFixture, make_member, sign_in


class SignedInClient(NamedTuple):
    client: httpx.AsyncClient
    csrf: str


CHROMIUM = (
    os.environ.get("PROMPTLOGIC_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)


@pytest.fixture
async def owner(session: AsyncSession, tenant: Tenant) -> MemberFixture:
    return await make_member(session, tenant, "owner")


@pytest.fixture
async def editor(session: AsyncSession, tenant: Tenant) -> MemberFixture:
    return await make_member(session, tenant, "editor")


@pytest.fixture
async def viewer(session: AsyncSession, tenant: Tenant) -> MemberFixture:
    return await make_member(session, tenant, "viewer")


@pytest.fixture
async def rule_author(session: AsyncSession, tenant: Tenant) -> MemberFixture:
    return await make_member(session, tenant, "rule_author")


@asynccontextmanager
async def signed_in(app: FastAPI, member: MemberFixture) -> AsyncIterator[SignedInClient]:
    """An HTTP client signed in as `member`, and the session's CSRF token."""
    async with client_for(app) as client:
        yield SignedInClient(client, await sign_in(client, member))


@pytest.fixture
async def as_owner(app: FastAPI, owner: MemberFixture) -> AsyncIterator[SignedInClient]:
    async with signed_in(app, owner) as signed:
        yield signed


@pytest.fixture
async def as_editor(app: FastAPI, editor: MemberFixture) -> AsyncIterator[SignedInClient]:
    async with signed_in(app, editor) as signed:
        yield signed


@pytest.fixture
async def as_viewer(app: FastAPI, viewer: MemberFixture) -> AsyncIterator[SignedInClient]:
    async with signed_in(app, viewer) as signed:
        yield signed


@pytest.fixture
async def as_rule_author(app: FastAPI, rule_author: MemberFixture) -> AsyncIterator[SignedInClient]:
    async with signed_in(app, rule_author) as signed:
        yield signed


@pytest.fixture(scope="session")
async def live_url(app: FastAPI) -> AsyncIterator[str]:
    """The test app on a real port, for the browser."""
    async with serving(app) as url:
        yield url


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    """Headless Chromium from Debian's packages, driven by Playwright."""
    from playwright.async_api import async_playwright

    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's `chromium`")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: object, live_url: str, clean: None) -> AsyncIterator[object]:
    """A fresh browser context (no cookies) on the live app; `page.goto('/ui/…')` works."""
    context = await browser.new_context(base_url=live_url)  # type: ignore[attr-defined]
    context.set_default_timeout(10_000)
    page = await context.new_page()
    yield page
    await context.close()
