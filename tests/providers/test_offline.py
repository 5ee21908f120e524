"""The offline provider: deterministic, schema-satisfying, no network."""

import json

import jsonschema
import pytest

from promptlogic.demo_prompts import TRIAGE_RESPONSE_FORMAT
from promptlogic.providers.base import Completion, Delta
from promptlogic.providers.offline import OfflineProvider, minimal_instance

MESSAGES = [
    {"role": "system", "content": "You triage support tickets."},
    {"role": "user", "content": "Customer tier: pro\nSubject: Charged twice\nRefund one?"},
]
SETTINGS = {"name": "gpt-4o-mini"}

SCHEMAS = [
    TRIAGE_RESPONSE_FORMAT,
    {
        "type": "object",
        "properties": {
            "code": {"type": "string", "minLength": 12, "maxLength": 20},
            "count": {"type": "integer", "minimum": 3, "maximum": 9},
            "score": {"type": "number", "exclusiveMinimum": 0.5},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 2},
            "when": {"type": "string", "format": "date-time"},
            "nested": {
                "type": "object",
                "properties": {"flag": {"type": ["boolean", "null"]}},
                "required": ["flag"],
                "additionalProperties": False,
            },
        },
        "required": ["code", "count", "score", "tags", "nested"],
        "additionalProperties": False,
    },
    {
        "$defs": {"item": {"type": "object", "properties": {"sku": {"const": "X-1"}}}},
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1},
            "choice": {"anyOf": [{"type": "integer", "multipleOf": 5, "minimum": 7}, {}]},
            "both": {"allOf": [{"required": ["a"]}, {"properties": {"a": {"type": "string"}}}]},
        },
        "required": ["items", "choice", "both"],
    },
    {"type": "array", "items": {"type": "string", "minLength": 3}, "minItems": 1},
]


async def test_answers_are_deterministic_and_say_they_are_offline():
    provider = OfflineProvider()
    first = await provider.complete(MESSAGES, SETTINGS)
    assert first == await provider.complete(MESSAGES, SETTINGS)
    assert (first.provider, first.model) == ("offline", "gpt-4o-mini")
    assert "Charged twice" in first.text
    assert first.usage.input_tokens > 0
    assert first.usage.output_tokens > 0
    other = await provider.complete([{"role": "user", "content": "something else"}], SETTINGS)
    assert other.text != first.text


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_json_answers_satisfy_the_response_format(schema):
    completion = await OfflineProvider().complete(MESSAGES, SETTINGS, schema)

    jsonschema.validate(json.loads(completion.text), schema)
    jsonschema.validate(minimal_instance(schema), schema)


async def test_openai_style_response_format_is_understood():
    wrapped = {"type": "json_schema", "json_schema": {"name": "t", "schema": SCHEMAS[0]}}
    completion = await OfflineProvider().complete(MESSAGES, SETTINGS, wrapped)

    parsed = json.loads(completion.text)
    jsonschema.validate(parsed, SCHEMAS[0])
    assert parsed["category"] == "billing"  # enums pick the first


async def test_streaming_yields_deltas_that_add_up_then_the_completion():
    events = [e async for e in OfflineProvider().stream(MESSAGES, SETTINGS)]
    *deltas, final = events
    assert all(isinstance(d, Delta) for d in deltas)
    assert len(deltas) > 1
    assert isinstance(final, Completion)
    assert "".join(d.text for d in deltas) == final.text
