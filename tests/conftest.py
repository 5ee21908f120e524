"""Shared fixtures: a migrated test database, a running app, an HTTP client, clean tables.

Also the tenant `acme` and its admin key `deployer`, which most API tests act as.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.app import create_app
from promptlogic.db.engine import create_engine
from promptlogic.db.migrations import upgrade
from promptlogic.db.models import Base
from promptlogic.rendering import Renderer
from promptlogic.settings import Settings
from promptlogic.tenancy.models import Tenant
from tests.database import TestServer
from tests.factories import KeyFixture, make_key, make_tenant
from tests.fakes.fixtures import fake_openai, fake_openai_server  # noqa: F401 - shared fixtures

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
TABLES = ", ".join(table.name for table in Base.metadata.sorted_tables)


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for tests: the given database, a fixed secret, no `.env` file from the cwd."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, secret_key=TEST_SECRET, **overrides
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run `app`'s lifespan (engine, NOTIFY listener, caches) around a block."""
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI, **kwargs: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, **kwargs)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture(scope="session")
async def pg() -> AsyncIterator[TestServer]:
    server = TestServer()
    yield server
    await server.drop_created()


@pytest.fixture(scope="session")
async def database_url(pg: TestServer) -> str:
    url = await pg.create_database("main")
    engine = create_engine(make_settings(url))
    await upgrade(engine)
    await engine.dispose()
    return url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running(create_app(settings)) as started:
        yield started


@pytest.fixture
def renderer(app: FastAPI) -> Renderer:
    """The running app's render pool, for services that check templates."""
    return app.state.renderer


@pytest.fixture
async def clean(app: FastAPI) -> None:
    """Empty every table before the test, so each test sees only its own data.

    The rows the migrations seed (the model catalog) are kept: they are put back as they were.
    Run records the last test left in the buffer are written first, so the recorder's insert
    cannot deadlock with the TRUNCATE.
    """
    await app.state.run_recorder.flush()
    async with app.state.engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TEMP TABLE seeded ON COMMIT DROP AS "
                "SELECT * FROM model_prices WHERE tenant_id IS NULL"
            )
        )
        await connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        await connection.execute(text("INSERT INTO model_prices SELECT * FROM seeded"))


@pytest.fixture
async def session(app: FastAPI, clean: None) -> AsyncIterator[AsyncSession]:
    """A session for building test data; factories commit through it."""
    async with app.state.sessionmaker() as db:
        yield db


@pytest.fixture
async def client(app: FastAPI, clean: None) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


@pytest.fixture
async def tenant(session: AsyncSession) -> Tenant:
    """The tenant `acme`."""
    return await make_tenant(session, "acme")


@pytest.fixture
async def admin(session: AsyncSession, tenant: Tenant) -> KeyFixture:
    """An admin key of `acme`, named `deployer`."""
    return await make_key(session, tenant, ["admin"], name="deployer")
