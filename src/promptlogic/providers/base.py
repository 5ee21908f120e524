"""The one interface the run path calls a model through, real or offline.

A provider takes rendered messages, the version's model settings and its response format (a
JSON Schema, or None) and answers with a `Completion`; streaming yields `Delta`s as text
arrives and ends with the `Completion`. Retries, fallbacks and timeouts per call belong to the
caller (the run path), so a provider makes exactly one attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    usage: Usage
    model: str
    provider: str  # the connection's kind, e.g. "openai" or "offline"
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True)
class Delta:
    text: str


Message = Mapping[str, str]  # {"role": ..., "content": ...}
ModelSettings = Mapping[str, Any]  # the version's `model`: name, temperature, max_tokens, …
ResponseFormat = Mapping[str, Any] | None  # a JSON Schema the output must satisfy


class ChatProvider(Protocol):
    """What the run path needs from a provider: one call, whole or streamed."""

    name: str

    async def complete(
        self,
        messages: Sequence[Message],
        model_settings: ModelSettings,
        response_format: ResponseFormat = None,
    ) -> Completion: ...

    def stream(
        self,
        messages: Sequence[Message],
        model_settings: ModelSettings,
        response_format: ResponseFormat = None,
    ) -> AsyncIterator[Delta | Completion]:
        """Text deltas as they arrive, then exactly one `Completion` with the whole text."""
        ...


def json_schema_of(response_format: ResponseFormat) -> Mapping[str, Any] | None:
    """The JSON Schema in a response format: a bare schema (as versions store it) or OpenAI's
    `{"type": "json_schema", "json_schema": {"schema": …}}` wrapper."""
    if not response_format:
        return None
    if response_format.get("type") == "json_schema" and "json_schema" in response_format:
        wrapped = response_format["json_schema"]
        return wrapped.get("schema") if isinstance(wrapped, Mapping) else None
    if response_format.get("type") == "json_object":
        return {"type": "object"}
    return response_format
