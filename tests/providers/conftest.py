"""A real provider connection to the fake OpenAI server, for adapter and retry tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from promptlogic.providers.clients import ResolvedConnection, build_client
from promptlogic.providers.openai_chat import OpenAIChatProvider
from tests.fakes import FakeOpenAI

FAKE_API_KEY = "sk-test-tenant-secret-0123456789"


@pytest.fixture
def fake_connection(fake_openai: FakeOpenAI) -> ResolvedConnection:
    """A tenant's `openai_compatible` connection whose base URL is the fake server."""
    return ResolvedConnection(
        name="fake",
        kind="openai_compatible",
        source="named",
        base_url=fake_openai.base_url,
        api_key=FAKE_API_KEY,
        headers=(("X-Gateway-Key", "gateway-header-secret"),),
        timeout_seconds=5.0,
        fingerprint="fake",
    )


@pytest.fixture
async def chat_provider(fake_connection: ResolvedConnection) -> AsyncIterator[OpenAIChatProvider]:
    """The adapter over a client built as the registry builds it (SDK retries off)."""
    client = build_client(fake_connection)
    try:
        yield OpenAIChatProvider.for_connection(client, fake_connection)
    finally:
        await client.close()
