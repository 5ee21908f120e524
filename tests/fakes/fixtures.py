"""Pytest fixtures for the fake OpenAI server, importable from any conftest.

In `tests/conftest.py`:

    from tests.fakes.fixtures import fake_openai, fake_openai_server  # noqa: F401

Both names are needed there: `fake_openai` asks for `fake_openai_server` by name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    """The server, started once per session: for session fixtures that need its `base_url`.

    Tests should take `fake_openai` instead, which also resets the script.
    """
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    """The session's server with an empty script and record, so no test sees another's."""
    fake_openai_server.reset()
    return fake_openai_server
