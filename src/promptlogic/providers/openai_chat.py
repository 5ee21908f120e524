"""The `ChatProvider` over OpenAI's chat completions API (OpenAI, Azure OpenAI, compatibles).

One attempt per call, as `base` asks: the client's own retries are off and retries, fallbacks
and backoff live in `reliability`, so they never multiply. The request is built from the
version's model settings alone; provider options the version carries go in the body, but can
never replace what we decide (the model, the messages, streaming, the response format).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from openai import AsyncOpenAI

from promptlogic.providers.base import (
    Completion,
    Delta,
    Message,
    ModelSettings,
    ResponseFormat,
    Usage,
    json_schema_of,
)

if TYPE_CHECKING:
    from promptlogic.providers.clients import ResolvedConnection

# Keys of the version's `model` that are ours, not the provider's.
OWN_SETTINGS = frozenset(
    {"name", "provider", "fallbacks", "timeout_seconds", "temperature", "max_tokens", "repair"}
)
# Body fields an option must never set: they decide what is asked and how it is read.
PROTECTED_FIELDS = frozenset(
    {"model", "messages", "stream", "stream_options", "response_format", "n"}
)
SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_SCHEMA_NAME = "response"


class MalformedOutput(ValueError):
    """The provider answered 200 with something that is not a chat completion.

    A `ValueError`, like the SDK's own JSON decoding errors, so both count as one kind of
    failure: a provider failure that a retry of the same request would not fix.
    """


def provider_options(model_settings: ModelSettings) -> dict[str, Any]:
    """The version's extra settings (`top_p`, `seed`, …) to pass through as body fields."""
    return {
        key: value
        for key, value in model_settings.items()
        if key not in OWN_SETTINGS and key not in PROTECTED_FIELDS and value is not None
    }


def openai_response_format(response_format: ResponseFormat) -> dict[str, Any] | None:
    """OpenAI's `response_format` for a version's format: a JSON Schema, not strict.

    Not strict because strict mode refuses common schemas (optional properties, formats); the
    run path validates the output itself, so the provider's check is only a help.
    """
    if not response_format:
        return None
    if response_format.get("type") == "json_object":
        return {"type": "json_object"}
    schema = json_schema_of(response_format)
    if schema is None:
        return None
    name = DEFAULT_SCHEMA_NAME
    wrapped = response_format.get("json_schema")
    if isinstance(wrapped, Mapping) and SCHEMA_NAME.match(str(wrapped.get("name", ""))):
        name = str(wrapped["name"])
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": dict(schema), "strict": False},
    }


def timeout_of(model_settings: ModelSettings, default: float) -> float:
    """The version's `timeout_seconds` when it is a positive number, else the connection's."""
    value = model_settings.get("timeout_seconds")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


def build_request(
    messages: Sequence[Message],
    model_settings: ModelSettings,
    response_format: ResponseFormat,
    *,
    stream: bool,
) -> dict[str, Any]:
    """The request body (the keyword arguments of `chat.completions.create`, without the
    timeout), without the version's provider options: see `provider_options`."""
    request: dict[str, Any] = {
        "model": str(model_settings["name"]),
        "messages": [dict(message) for message in messages],
    }
    for field in ("temperature", "max_tokens"):
        if model_settings.get(field) is not None:
            request[field] = model_settings[field]
    wanted_format = openai_response_format(response_format)
    if wanted_format is not None:
        request["response_format"] = wanted_format
    if stream:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage(input_tokens=0, output_tokens=0)
    return Usage(
        input_tokens=int(usage.prompt_tokens or 0),
        output_tokens=int(usage.completion_tokens or 0),
    )


def _completion_of(answer: Any, *, default_model: str, provider: str) -> Completion:
    """A chat completion's JSON as a `Completion`; `MalformedOutput` for anything else."""
    try:
        choice = answer["choices"][0]
        content = choice["message"].get("content") or ""
        usage = answer.get("usage") or {}
        input_tokens = int(usage.get("prompt_tokens") or 0)
        output_tokens = int(usage.get("completion_tokens") or 0)
        model = answer.get("model") or default_model
        finish_reason = choice.get("finish_reason") or "stop"
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise MalformedOutput("the provider's answer is not a chat completion") from None
    if not isinstance(content, str) or not isinstance(model, str):
        raise MalformedOutput("the provider's answer is not a chat completion")
    return Completion(
        text=content,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        model=model,
        provider=provider,
        finish_reason=str(finish_reason),
    )


class OpenAIChatProvider:
    """A connection's pooled client seen as a `ChatProvider`; cheap to build per call."""

    def __init__(self, client: AsyncOpenAI, *, name: str, kind: str, timeout_seconds: float):
        self.client = client
        self.name = name
        self.kind = kind  # what `Completion.provider` reports
        self.timeout_seconds = timeout_seconds

    @classmethod
    def for_connection(
        cls, client: AsyncOpenAI, connection: ResolvedConnection
    ) -> OpenAIChatProvider:
        return cls(
            client,
            name=connection.name,
            kind=connection.kind,
            timeout_seconds=connection.timeout_seconds,
        )

    async def complete(
        self,
        messages: Sequence[Message],
        model_settings: ModelSettings,
        response_format: ResponseFormat = None,
    ) -> Completion:
        request = build_request(messages, model_settings, response_format, stream=False)
        body = {**request, **provider_options(model_settings)}
        # The client's own `post`, not `chat.completions.create`: the same request, auth and
        # errors, without converting the body through the SDK's types both ways, which was
        # the largest part of a run's CPU time.
        answer = await self.client.post(
            "/chat/completions",
            body=body,
            cast_to=object,
            options={"timeout": timeout_of(model_settings, self.timeout_seconds)},
        )
        return _completion_of(answer, default_model=body["model"], provider=self.kind)

    async def stream(
        self,
        messages: Sequence[Message],
        model_settings: ModelSettings,
        response_format: ResponseFormat = None,
    ) -> AsyncIterator[Delta | Completion]:
        """Deltas as chunks arrive; the usage comes on the last chunk (`include_usage`)."""
        request = build_request(messages, model_settings, response_format, stream=True)
        chunks = await self.client.chat.completions.create(
            **request,
            # `extra_body`: the SDK's signature knows only the fields of its release.
            extra_body=provider_options(model_settings) or None,
            timeout=timeout_of(model_settings, self.timeout_seconds),
        )
        parts: list[str] = []
        usage = None
        model = request["model"]
        finish_reason = "stop"
        async with chunks:  # closes the connection if our consumer stops early
            async for chunk in chunks:
                usage = chunk.usage or usage
                model = chunk.model or model
                for choice in chunk.choices[:1]:
                    finish_reason = choice.finish_reason or finish_reason
                    if choice.delta and choice.delta.content:
                        parts.append(choice.delta.content)
                        yield Delta(choice.delta.content)
        yield Completion(
            text="".join(parts),
            usage=_usage(usage),
            model=model,
            provider=self.kind,
            finish_reason=finish_reason,
        )
