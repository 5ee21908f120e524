"""Fixtures of the run tests."""

from __future__ import annotations

import pytest

from tests.factories import KeyFixture, make_key


@pytest.fixture
async def runner(session, tenant) -> KeyFixture:
    """A key of `acme` that may run prompts and read runs."""
    return await make_key(session, tenant, ["run", "read"], name="checkout")
