"""Fixtures for tenant rules: keys by scope, a prompt to scope rules to, a LISTEN on changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from promptlogic.db.notify import CHANNEL, asyncpg_dsn
from tests.context.conftest import Notifications
from tests.factories import KeyFixture, make_key
from tests.rules.support import make_prompt

PROMPT = "triage"


@pytest.fixture
async def author(session, tenant) -> KeyFixture:
    """A key that may write rules and nothing else."""
    return await make_key(session, tenant, ["rules"], name="rules-editor")


@pytest.fixture
async def reader(session, tenant) -> KeyFixture:
    return await make_key(session, tenant, ["read"], name="viewer")


@pytest.fixture
async def prompt(client, admin) -> str:
    """The name of `acme`'s chat prompt `triage`."""
    return await make_prompt(client, admin.headers, PROMPT)


@pytest.fixture
async def notifications(database_url, clean) -> AsyncIterator[Notifications]:
    received = Notifications()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    await connection.add_listener(CHANNEL, received.on_notification)
    try:
        yield received
    finally:
        await connection.close()
