"""Fixtures for context records: keys by scope, a raw LISTEN on the change channel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from promptlogic.db.notify import CHANNEL, asyncpg_dsn
from tests.factories import KeyFixture, make_key


@pytest.fixture
async def writer(session, tenant) -> KeyFixture:
    return await make_key(session, tenant, ["write"], name="importer")


@pytest.fixture
async def reader(session, tenant) -> KeyFixture:
    return await make_key(session, tenant, ["read"], name="viewer")


class Notifications:
    """What arrives on the change channel, as another worker would receive it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()

    def on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.messages.append(json.loads(payload))
        self._arrived.set()

    def of_topic(self, topic: str) -> list[dict[str, Any]]:
        return [message for message in self.messages if message.get("topic") == topic]

    async def wait_for(self, topic: str, count: int = 1) -> list[dict[str, Any]]:
        async with asyncio.timeout(5):
            while len(self.of_topic(topic)) < count:
                self._arrived.clear()
                await self._arrived.wait()
        await asyncio.sleep(0.05)  # anything more would be a bug: let it arrive to be seen
        return self.of_topic(topic)


@pytest.fixture
async def notifications(database_url, clean) -> AsyncIterator[Notifications]:
    received = Notifications()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    await connection.add_listener(CHANNEL, received.on_notification)
    try:
        yield received
    finally:
        await connection.close()
