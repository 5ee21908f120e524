"""Work the web process does itself: straight-line templates and small linear schemas.

Each test learns what it can from a working pool, then stops the workers: what still renders
was rendered in the web process, and what needed a worker fails with `RendererUnavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from promptlogic.errors import InvalidInput
from promptlogic.rendering import (
    LimitExceeded,
    Renderer,
    RenderError,
    RendererUnavailable,
    RenderLimits,
    SandboxViolation,
    UndefinedVariable,
)
from promptlogic.rendering.analysis import STRAIGHT_MAX_SOURCE_CHARS, straight_line_nodes
from promptlogic.rendering.inline import RENDER_BUDGET, VALIDATION_BUDGET
from promptlogic.rendering.sandbox import PromptSandbox
from promptlogic.rendering.schema import canonical, linear_cost

SYSTEM = 'Policy:\n{% include "policy" %}\nTier: {{ customer.tier | upper }}'
USER = "{% if urgent %}URGENT {% endif %}{{ subject ~ ': ' ~ message | trim }}"
INCLUDES = {"policy": "Refunds within {{ refund_days | default(30) }} days."}
VARIABLES = {"customer": {"tier": "pro"}, "urgent": True, "subject": "Hi", "message": " help "}
SCHEMA = {
    "type": "object",
    "properties": {
        "customer": {"type": "object", "properties": {"tier": {"enum": ["free", "pro"]}}},
        "urgent": {"type": "boolean"},
        "subject": {"type": "string", "maxLength": 20},
        "message": {"type": "string"},
    },
    "required": ["customer", "subject", "message"],
}


@pytest.fixture
async def renderer() -> AsyncIterator[Renderer]:
    async with Renderer(workers=1) as started:
        yield started


async def stop_workers(renderer: Renderer) -> None:
    await renderer.pool.close()


async def render(renderer: Renderer, variables: dict[str, Any], **options: Any) -> list[str]:
    return await renderer.render(
        [SYSTEM, USER], includes=INCLUDES, variables=variables, schema=SCHEMA, **options
    )


async def test_a_straight_line_prompt_renders_here_once_a_worker_has_rendered_it(
    renderer: Renderer,
) -> None:
    by_worker = await render(renderer, VARIABLES)
    await stop_workers(renderer)

    assert await render(renderer, VARIABLES) == by_worker
    other = {**VARIABLES, "urgent": False, "customer": {"tier": "free"}}
    assert await render(renderer, other) == [
        "Policy:\nRefunds within 30 days.\nTier: FREE",
        "Hi: help",
    ]


async def test_a_template_never_rendered_by_a_worker_needs_one(renderer: Renderer) -> None:
    await stop_workers(renderer)
    with pytest.raises(RendererUnavailable):
        await render(renderer, VARIABLES)


@pytest.mark.parametrize(
    "template",
    [
        "{% for item in items %}{{ item }}{% endfor %}",
        "{{ name * 3 }}",
        "{{ name.upper() }}",
        "{% set shout = name | upper %}{{ shout }}",
        "{{ items | join(', ') }}",
        "{{ name | replace('a', 'aaaa') }}",
        "{{ name[1:] }}",
    ],
)
async def test_loops_calls_arithmetic_and_growing_filters_stay_in_workers(
    renderer: Renderer, template: str
) -> None:
    variables = {"items": ["a", "b"], "name": "Ada"}
    await renderer.render([template], variables=variables)
    await stop_workers(renderer)
    with pytest.raises(RendererUnavailable):
        await renderer.render([template], variables=variables)


async def test_errors_here_are_the_errors_a_worker_reports(renderer: Renderer) -> None:
    bad_inputs = [
        {**VARIABLES, "subject": "x" * 21},  # the schema: maxLength
        {k: v for k, v in VARIABLES.items() if k != "subject"},  # the schema: required
        {**VARIABLES, "customer": {}},  # a variable the template reads is missing
    ]
    by_worker = []
    for variables in bad_inputs:
        with pytest.raises(InvalidInput) as raised:
            await render(renderer, variables)
        by_worker.append((type(raised.value), raised.value.detail, raised.value.errors))
    await render(renderer, VARIABLES)  # learned: straight-line
    await stop_workers(renderer)

    for variables, expected in zip(bad_inputs, by_worker, strict=True):
        with pytest.raises(InvalidInput) as raised:
            await render(renderer, variables)
        assert (type(raised.value), raised.value.detail, raised.value.errors) == expected
    assert by_worker[2][0] is UndefinedVariable
    assert by_worker[2][2] == [
        {
            "field": "messages.0.content",
            "message": "line 3: a value of type `dict` has no attribute 'tier'",
            "line": 3,
        }
    ]


async def test_the_sandbox_and_the_output_limits_hold_here(renderer: Renderer) -> None:
    template = "{{ x[key] }}{{ s }}"
    tight = RenderLimits(max_output_chars=50)
    fine = {"x": {"a": 1}, "key": "a", "s": "ok"}
    assert await renderer.render([template], variables=fine, limits=tight) == ["1ok"]
    await stop_workers(renderer)

    for key in ("__class__", "__init__", "__len__"):
        with pytest.raises(SandboxViolation):
            await renderer.render([template], variables={**fine, "key": key}, limits=tight)
    with pytest.raises(LimitExceeded) as raised:
        await renderer.render([template], variables={**fine, "s": "y" * 60}, limits=tight)
    assert raised.value.limit == "max_output_chars"


async def test_large_variables_go_to_a_worker(renderer: Renderer) -> None:
    await renderer.render(["{{ items | length }}"], variables={"items": []})
    await stop_workers(renderer)
    small = {"items": list(range(10))}
    assert await renderer.render(["{{ items | length }}"], variables=small) == ["10"]
    large = {"items": list(range(RENDER_BUDGET))}
    with pytest.raises(RendererUnavailable):
        await renderer.render(["{{ items | length }}"], variables=large)


async def test_schemas_with_patterns_references_or_large_data_go_to_a_worker(
    renderer: Renderer,
) -> None:
    await stop_workers(renderer)
    linear = {"type": "object", "properties": {"pattern": {"type": "string"}}}
    assert await renderer.validate_variables(linear, {"pattern": 1}) == [
        {"field": "variables.pattern", "message": 'must be of type "string"'}
    ]
    for schema, data in [
        ({"properties": {"code": {"pattern": "^(a+)+$"}}}, {"code": "aaa"}),
        ({"$defs": {"n": {"type": "integer"}}, "properties": {"n": {"$ref": "#/$defs/n"}}}, {}),
        ({"properties": {"n": {"uniqueItems": True}}}, {"n": [1, 2]}),
        ({"properties": {"n": {"type": "array"}}}, {"n": list(range(VALIDATION_BUDGET))}),
    ]:
        with pytest.raises(RendererUnavailable):
            await renderer.validate_variables(schema, data)


def test_straight_line_nodes_accepts_only_bounded_work() -> None:
    environment = PromptSandbox()

    def nodes(source: str) -> int | None:
        return straight_line_nodes(environment.parse(source), len(source))

    assert nodes(SYSTEM) is not None
    assert nodes(USER) is not None
    assert nodes("{{ a if b else c | default('x') }}{{ -n }}{{ [1, 2] | first }}") is not None
    for bounded_only_by_a_deadline in (
        "{% for i in range(9) %}{% endfor %}",
        "{{ a ** b }}",
        "{{ cycler(1) }}",
        "{% macro m() %}{% endmacro %}",
        "{{ a | map('upper') }}",
        "{{ a | indent(8) }}",
    ):
        assert nodes(bounded_only_by_a_deadline) is None, bounded_only_by_a_deadline
    assert nodes("x" * (STRAIGHT_MAX_SOURCE_CHARS + 1)) is None


def test_linear_cost_refuses_keywords_that_can_explode() -> None:
    assert linear_cost(canonical(SCHEMA)) is not None
    named_like_keywords = {"properties": {"$ref": {}, "pattern": {}, "uniqueItems": {}}}
    assert linear_cost(canonical(named_like_keywords)) is not None
    for schema in (
        {"pattern": "a"},
        {"patternProperties": {"a": {}}},
        {"items": {"$ref": "#"}},
        {"anyOf": [{"uniqueItems": True}]},
        {"unevaluatedProperties": False},
        {"properties": {"a": {"x-unknown": 1}}},
    ):
        assert linear_cost(canonical(schema)) is None, schema


async def test_a_render_error_here_names_the_template_like_a_worker(renderer: Renderer) -> None:
    await renderer.render(["ok", "{{ a.b }}"], variables={"a": {"b": 1}})
    await stop_workers(renderer)
    with pytest.raises(RenderError) as raised:
        await renderer.render(["ok", "{{ a.b }}"], variables={"a": 5})
    assert raised.value.errors == [
        {
            "field": "messages.1.content",
            "message": "line 1: a value of type `int` has no attribute 'b'",
            "line": 1,
        }
    ]


async def test_a_changed_include_is_a_new_template_set(renderer: Renderer) -> None:
    await render(renderer, VARIABLES)
    await stop_workers(renderer)
    looping = {"policy": "{% for day in range(30) %}{{ day }}{% endfor %}"}
    with pytest.raises(RendererUnavailable):
        await renderer.render([SYSTEM, USER], includes=looping, variables=VARIABLES, schema=SCHEMA)
