"""The offline provider: answers without any network, so the demo and tests run anywhere.

Its answers are deterministic (derived from the rendered messages only), satisfy the response
format when one is given, report a rough token usage, and always say `"provider": "offline"`
so nobody mistakes them for a model's.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from promptlogic.providers.base import (
    Completion,
    Delta,
    Message,
    ModelSettings,
    ResponseFormat,
    Usage,
    json_schema_of,
)

PROVIDER = "offline"
ECHO_WORDS = 24
MAX_DEPTH = 12  # beyond it, only required properties are filled (recursive schemas end)
STREAM_CHUNK_WORDS = 4


def count_tokens(text: str) -> int:
    """About four characters a token, as for English text with common tokenizers."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _last_user_text(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return str(messages[-1].get("content", "")) if messages else ""


def echo(messages: Sequence[Message]) -> str:
    """A short, deterministic answer that shows what the model would have been asked."""
    words = _last_user_text(messages).split()
    shown = " ".join(words[:ECHO_WORDS]) + (" …" if len(words) > ECHO_WORDS else "")
    digest = hashlib.sha256(
        json.dumps([dict(m) for m in messages], sort_keys=True).encode()
    ).hexdigest()[:8]
    return f"[offline {digest}] No model was called. Last message: {shown}"


class OfflineProvider:
    name = PROVIDER

    async def complete(
        self,
        messages: Sequence[Message],
        model_settings: ModelSettings,
        response_format: ResponseFormat = None,
    ) -> Completion:
        schema = json_schema_of(response_format)
        if schema is None:
            text = echo(messages)
        else:
            text = json.dumps(minimal_instance(schema, summary=echo(messages)))
        input_text = "\n".join(str(m.get("content", "")) for m in messages)
        return Completion(
            text=text,
            usage=Usage(input_tokens=count_tokens(input_text), output_tokens=count_tokens(text)),
            model=str(model_settings.get("name", PROVIDER)),
            provider=PROVIDER,
        )

    async def stream(
        self,
        messages: Sequence[Message],
        model_settings: ModelSettings,
        response_format: ResponseFormat = None,
    ) -> AsyncIterator[Delta | Completion]:
        completion = await self.complete(messages, model_settings, response_format)
        words = completion.text.split(" ")
        for start in range(0, len(words), STREAM_CHUNK_WORDS):
            chunk = " ".join(words[start : start + STREAM_CHUNK_WORDS])
            yield Delta(chunk if start == 0 else " " + chunk)
        yield completion


class _Instance:
    """Builds a small instance of a JSON Schema: the first choice of every alternative."""

    def __init__(self, root: Mapping[str, Any], summary: str) -> None:
        self.root = root
        self.summary = summary

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        target: Any = self.root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return self.resolve(merged)

    def build(self, schema: Any, depth: int = 0, key: str = "") -> Any:
        if not isinstance(schema, Mapping):  # `true` accepts anything
            return None
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        if schema.get("default") is not None:
            return schema["default"]
        for combinator in ("anyOf", "oneOf"):
            if schema.get(combinator):
                merged = {k: v for k, v in schema.items() if k != combinator}
                return self.build({**merged, **self.resolve(schema[combinator][0])}, depth, key)
        if schema.get("allOf"):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self.resolve(part))
            return self.build(merged, depth, key)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
        if kind is None:
            kind = _guess_type(schema)
        return getattr(self, f"_{kind}", self._null)(schema, depth, key)

    def _object(self, schema: Mapping[str, Any], depth: int, key: str) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        required = list(schema.get("required") or [])
        names = required + [n for n in properties if n not in required and depth < MAX_DEPTH]
        value = {name: self.build(properties.get(name, {}), depth + 1, name) for name in names}
        minimum = int(schema.get("minProperties", 0))
        extra = schema.get("additionalProperties", True)
        index = 0
        while len(value) < minimum and extra is not False:
            value.setdefault(f"key{index}", self.build(extra, depth + 1, f"key{index}"))
            index += 1
        return value

    def _array(self, schema: Mapping[str, Any], depth: int, key: str) -> list[Any]:
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        count = max(int(schema.get("minItems", 0)), len(prefix))
        value = [
            self.build(prefix[i] if i < len(prefix) else items, depth + 1, key)
            for i in range(count)
        ]
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) < len(
            value
        ):
            value = [v if i == 0 else i for i, v in enumerate(value)]  # distinct, best effort
        return value

    def _string(self, schema: Mapping[str, Any], depth: int, key: str) -> str:
        fixed = _FORMATS.get(str(schema.get("format", "")))
        if fixed is not None:
            return fixed
        text = self.summary if key in ("summary", "answer", "text", "reply") else "offline"
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if high is not None:
            text = text[: int(high)]
        return text

    def _integer(self, schema: Mapping[str, Any], depth: int, key: str) -> int:
        return math.ceil(self._number(schema, depth, key))

    def _number(self, schema: Mapping[str, Any], depth: int, key: str) -> float | int:
        low, high = schema.get("minimum"), schema.get("maximum")
        value: float | int = low if low is not None else (0 if high is None or high >= 0 else high)
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            value = schema["exclusiveMinimum"] + 1
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            value = schema["exclusiveMaximum"] - 1
        step = schema.get("multipleOf")
        if step:
            value = math.ceil(value / step) * step
        return value

    def _boolean(self, schema: Mapping[str, Any], depth: int, key: str) -> bool:
        return False

    def _null(self, schema: Mapping[str, Any], depth: int, key: str) -> None:
        return None


_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "offline@example.com",
    "uri": "https://example.com/offline",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
}


def _guess_type(schema: Mapping[str, Any]) -> str:
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if "minLength" in schema or "maxLength" in schema or "format" in schema:
        return "string"
    if "minimum" in schema or "maximum" in schema:
        return "number"
    return "null"


def _merge(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**left, **right}
    if "properties" in left and "properties" in right:
        merged["properties"] = {**left["properties"], **right["properties"]}
    if "required" in left and "required" in right:
        merged["required"] = list(dict.fromkeys([*left["required"], *right["required"]]))
    return merged


def minimal_instance(schema: Mapping[str, Any], *, summary: str = "offline") -> Any:
    """A small value satisfying `schema`: enums pick the first, required properties are filled
    by type, lengths and bounds are honoured. `pattern` is not (no regex inversion)."""
    return _Instance(schema, summary).build(schema)
