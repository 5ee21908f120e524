"""Runs hold no database connection while they wait on the model, even with cold caches."""

from __future__ import annotations

import asyncio

import pytest

from promptlogic.app import create_app
from tests.conftest import client_for, make_settings, running
from tests.factories import make_key
from tests.fakes import Reply
from tests.runs.support import VARIABLES, make_prompt, run, use_fake


@pytest.fixture
async def small_pool_app(database_url, clean):
    """A fresh worker (every cache cold) with a pool of two connections."""
    settings = make_settings(database_url, db_pool_size=2, db_max_overflow=0, db_timeout_seconds=5)
    async with running(create_app(settings)) as started:
        yield started


async def test_many_concurrent_cold_runs_share_a_tiny_pool(
    client, session, tenant, admin, fake_openai, small_pool_app
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    runner = await make_key(session, tenant, ["run"])
    fake_openai.set_default(Reply("ok", delay=0.3))  # every run waits on the model a while
    async with client_for(small_pool_app) as cold:
        responses = await asyncio.gather(
            *(run(cold, runner, {"variables": VARIABLES}) for _ in range(12))
        )
    assert [r.status_code for r in responses] == [200] * 12, responses[0].text
    assert fake_openai.call_count() == 12
