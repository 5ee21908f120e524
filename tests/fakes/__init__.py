"""Fakes of the services promptlogic calls, served over real HTTP for tests and benchmarks.

`openai_server.FakeOpenAI` is the model provider; `fixtures` holds its pytest fixtures.
"""

from tests.fakes.openai_server import (
    Behaviour,
    Fail,
    FakeOpenAI,
    Hang,
    Malformed,
    RecordedRequest,
    Reply,
    Stream,
    Usage,
)

__all__ = [
    "Behaviour",
    "Fail",
    "FakeOpenAI",
    "Hang",
    "Malformed",
    "RecordedRequest",
    "Reply",
    "Stream",
    "Usage",
]
