"""Input schemas: validating variables, checking schemas, the default schema."""

from __future__ import annotations

import time

import pytest

from promptlogic.rendering import (
    LimitExceeded,
    Renderer,
    check_schema,
    default_schema,
    validate_variables,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "customer": {
            "type": "object",
            "properties": {"tier": {"enum": ["free", "pro"]}},
            "required": ["tier"],
        },
        "tickets": {"type": "array", "items": {"type": "string", "maxLength": 5}},
        "when": {"type": "string", "format": "date-time"},
    },
    "required": ["customer", "tickets"],
}


def test_valid_variables_have_no_problems() -> None:
    variables = {"customer": {"tier": "pro"}, "tickets": ["a"], "when": "not a date"}
    assert validate_variables(SCHEMA, variables) == []  # `format` is not enforced


def test_every_problem_is_named_by_field() -> None:
    variables = {"customer": {"tier": "gold"}, "tickets": ["short", "far too long", 3]}
    assert validate_variables(SCHEMA, variables) == [
        {"field": "variables.customer.tier", "message": 'must be one of ["free", "pro"]'},
        {"field": "variables.tickets.1", "message": "must have at most 5 characters"},
        {"field": "variables.tickets.2", "message": 'must be of type "string"'},
    ]


def test_missing_required_variables_are_named() -> None:
    assert validate_variables(SCHEMA, {"customer": {}}) == [
        {"field": "variables.customer.tier", "message": "is required"},
        {"field": "variables.tickets", "message": "is required"},
    ]


def test_messages_do_not_repeat_large_values() -> None:
    problems = validate_variables({"type": "integer"}, "x" * 1_000_000)
    assert problems == [{"field": "variables", "message": 'must be of type "integer"'}]


def test_remote_references_are_never_fetched() -> None:
    schema = {"$ref": "https://example.com/schema.json"}
    assert check_schema(schema) == [
        "only local references are supported: `https://example.com/schema.json`"
    ]
    (problem,) = validate_variables(schema, {})
    assert "cannot be resolved" in problem["message"]
    local = {"$defs": {"name": {"type": "string"}}, "properties": {"n": {"$ref": "#/$defs/name"}}}
    assert check_schema(local) == []
    assert validate_variables(local, {"n": 1}) == [
        {"field": "variables.n", "message": 'must be of type "string"'}
    ]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "object"}, []),
        (True, []),
        ({"type": "objet"}, ["at `/type`:"]),
        ({"properties": {"a": {"minLength": -1}}}, ["at `/properties/a/minLength`:"]),
        ({"pattern": "("}, ["at `/pattern`:"]),
        ("a string", ["must be a JSON Schema (an object)"]),
    ],
)
def test_invalid_schemas_are_explained(schema: object, expected: list[str]) -> None:
    problems = check_schema(schema)
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start)


def test_the_default_schema_requires_every_variable_as_a_string() -> None:
    assert default_schema({"b", "a"}) == {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a", "b"],
    }
    assert validate_variables(default_schema({"a"}), {}) == [
        {"field": "variables.a", "message": "is required"}
    ]


async def test_validation_in_a_worker_bounds_a_catastrophic_pattern(renderer: Renderer) -> None:
    schema = {"properties": {"name": {"pattern": "^(a+)+$"}}}
    assert await renderer.validate_variables(schema, {"name": "aaa"}) == []
    started = time.perf_counter()
    with pytest.raises(LimitExceeded) as caught:
        await renderer.validate_variables(schema, {"name": "a" * 40 + "!"})
    assert time.perf_counter() - started < 2
    assert caught.value.field == "variables"
