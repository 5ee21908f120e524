"""A renderer shared by the rendering tests: two workers, started once (about 0.3 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from promptlogic.rendering import Renderer


@pytest.fixture(scope="session")
async def renderer() -> AsyncIterator[Renderer]:
    async with Renderer(workers=2) as started:
        yield started
