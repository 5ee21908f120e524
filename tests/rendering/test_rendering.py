"""Rendering prompt templates in the workers: what a prompt writer can do."""

from __future__ import annotations

import pytest

from promptlogic.rendering import (
    Renderer,
    SandboxViolation,
    TemplateProblem,
    UndefinedVariable,
)


async def test_renders_each_message_with_the_same_variables(renderer: Renderer) -> None:
    system = "You triage tickets for {{ company }}."
    user = "{% for t in tickets %}{{ loop.index }}. {{ t.subject|upper }}\n{% endfor %}"
    texts = await renderer.render(
        [system, user],
        variables={"company": "Acme", "tickets": [{"subject": "refund"}, {"subject": "login"}]},
    )
    assert texts == ["You triage tickets for Acme.", "1. REFUND\n2. LOGIN\n"]


async def test_no_templates_render_to_nothing(renderer: Renderer) -> None:
    assert await renderer.render([], variables={}) == []


async def test_includes_resolve_by_the_exact_reference_written(renderer: Renderer) -> None:
    template = '{% include "policy" %} / {% include "policy@staging" %}'
    includes = {"policy": "live rules for {{ company }}", "policy@staging": "draft rules"}
    texts = await renderer.render([template], includes=includes, variables={"company": "Acme"})
    assert texts == ["live rules for Acme / draft rules"]


async def test_nested_includes_share_the_context(renderer: Renderer) -> None:
    includes = {
        "outer@production": "[outer {{ name }} {% include 'inner' %}]",
        "inner": "(inner {{ name|lower }})",
    }
    texts = await renderer.render(
        ["{% include 'outer@production' %}"], includes=includes, variables={"name": "Ada"}
    )
    assert texts == ["[outer Ada (inner ada)]"]


async def test_an_include_that_was_not_resolved_is_named(renderer: Renderer) -> None:
    with pytest.raises(TemplateProblem) as caught:
        await renderer.render(["{% include 'policy@staging' %}"], includes={"policy": "x"})
    assert caught.value.errors == [
        {
            "field": "messages.0.content",
            "message": "unknown include `policy@staging`: it was not resolved",
        }
    ]


async def test_a_missing_variable_is_a_422_naming_it(renderer: Renderer) -> None:
    with pytest.raises(UndefinedVariable) as caught:
        await renderer.render(["ok", "Hello\n{{ customer.name }}"], variables={})
    error = caught.value
    assert error.status == 422
    assert error.name == "customer"
    assert error.errors is not None
    assert error.errors[0]["field"] == "variables.customer"
    assert "messages.1.content" in error.errors[0]["message"]
    assert error.line == 2


async def test_a_missing_variable_inside_an_include_names_the_include(renderer: Renderer) -> None:
    with pytest.raises(UndefinedVariable) as caught:
        await renderer.render(["{% include 'policy' %}"], includes={"policy": "x\n{{ tier }}"})
    assert caught.value.name == "tier"
    assert caught.value.include == "policy"
    assert caught.value.line == 2


async def test_a_missing_attribute_is_reported_on_the_template(renderer: Renderer) -> None:
    with pytest.raises(UndefinedVariable) as caught:
        await renderer.render(["{{ customer.tier }}"], variables={"customer": {}})
    assert caught.value.field == "messages.0.content"
    assert "tier" in caught.value.detail


async def test_fields_name_the_templates_in_errors(renderer: Renderer) -> None:
    with pytest.raises(TemplateProblem) as caught:
        await renderer.render(["fine", "{{ oops }"], fields=["system", "user"])
    assert caught.value.field == "user"
    assert caught.value.line == 1


async def test_useful_filters_for_prompt_writing(renderer: Renderer) -> None:
    variables = {
        "order": {"id": 7, "items": ["a", "b"], "created": "2024-05-01T09:30:00Z"},
        "note": "line one\nline two",
        "long": "word " * 50,
        "epoch": 0,
    }
    template = (
        "{{ order|tojson }}|{{ order['items']|join(', ') }}|{{ order.created|date('%d %B %Y') }}"
        "|{{ epoch|date('%Y-%m-%d %H:%M') }}|{{ note|indent(2) }}|{{ long|truncate(14) }}"
        "|{{ missing|default('n/a') }}|{{ order['items']|length }}|{{ 'ada'|title }}"
        "|{{ '%.2f'|format(3.14159) }}|{{ 'x'|center(5) }}|{{ order|tojson(indent=1)|length }}"
    )
    (text,) = await renderer.render([template], variables=variables)
    assert text.split("|") == [
        '{"id": 7, "items": ["a", "b"], "created": "2024-05-01T09:30:00Z"}',
        "a, b",
        "01 May 2024",
        "1970-01-01 00:00",
        "line one\n  line two",
        "word word...",
        "n/a",
        "2",
        "Ada",
        "3.14",
        "  x  ",
        "77",
    ]


async def test_macros_namespaces_and_loop_helpers_work(renderer: Renderer) -> None:
    template = (
        "{% macro bullet(text) %}- {{ text }}{{ caller() if caller is defined else '' }}"
        "{% endmacro %}"
        "{% set ns = namespace(total=0) %}"
        "{% for n in numbers %}{% set ns.total = ns.total + n %}{% endfor %}"
        "{{ bullet('sum') }} {{ ns.total }}"
        "{% call bullet('x') %}!{% endcall %}"
        "{% for n in numbers %}{% if loop.last %}{% break %}{% endif %}{{ n }}{% endfor %}"
        "{{ '{} and {}'.format('a', 'b') }} {{ 'a,b'.split(',') }} {{ d.get('k', 0) }}"
    )
    (text,) = await renderer.render([template], variables={"numbers": [1, 2, 3], "d": {}})
    assert text == "- sum 6- x!12a and b ['a', 'b'] 0"


async def test_data_keys_named_like_dict_methods_read_the_data(renderer: Renderer) -> None:
    variables = {"order": {"update": "shipped", "items": [1, 2]}}
    (text,) = await renderer.render(
        ["{{ order.update }} {{ order['items']|sum }}"], variables=variables
    )
    assert text == "shipped 3"


async def test_dates_and_non_json_values_are_refused_or_converted(renderer: Renderer) -> None:
    from datetime import UTC, datetime

    from promptlogic.errors import InvalidInput

    when = datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    (text,) = await renderer.render(["{{ when|date('%Y') }}"], variables={"when": when})
    assert text == "2024"
    with pytest.raises(InvalidInput) as caught:
        await renderer.render(["{{ x }}"], variables={"x": {"deep": [object()]}})
    assert caught.value.errors == [
        {"field": "variables.x.deep.0", "message": "must be JSON data, not object"}
    ]


async def test_printing_a_function_explains_instead_of_leaking(renderer: Renderer) -> None:
    with pytest.raises(Exception, match="call it with") as caught:
        await renderer.render(["{{ 'abc'.upper }}"])
    assert "<built-in" not in str(caught.value)
    with pytest.raises(SandboxViolation):
        await renderer.render(["{{ ''.__class__ }}"])


async def test_any_text_survives_the_trip_through_a_worker(renderer: Renderer) -> None:
    odd = 'nul \x00, lone surrogate \ud800, emoji 🙂, quote " and newline\n'
    # What no column or JSON encoder could carry comes out as U+FFFD; the rest is kept.
    kept = 'nul \ufffd, lone surrogate \ufffd, emoji 🙂, quote " and newline\n'
    assert await renderer.render(["{{ odd }}|" + odd + "."], variables={"odd": odd}) == [
        f"{kept}|{kept}."
    ]


async def test_variables_nesting_too_deeply_are_refused(renderer: Renderer) -> None:
    from promptlogic.errors import InvalidInput

    deep: dict[str, object] = {}
    cursor = deep
    for _ in range(70):
        cursor["a"] = {}
        cursor = cursor["a"]  # type: ignore[assignment]
    with pytest.raises(InvalidInput, match="nests deeper than 64 levels"):
        await renderer.render(["x"], variables={"deep": deep})
