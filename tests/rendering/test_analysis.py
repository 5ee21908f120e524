"""Save-time analysis: what a template uses and includes, and what it may not do."""

from __future__ import annotations

import time

import pytest
from jinja2 import pass_context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from promptlogic.rendering import (
    LimitExceeded,
    Renderer,
    RenderLimits,
    TemplateInfo,
    TemplateProblem,
    analyze,
)
from promptlogic.rendering.engine import Engine


def test_reports_the_variables_used_and_the_includes_in_order() -> None:
    source = (
        "{% set greeting = 'hi' %}{{ greeting }} {{ customer.name }}"
        "{% for t in tickets %}{{ t }}{{ loop.index }}{% endfor %}"
        "{% include 'policy@staging' %}{% include 'tone' %}{% include 'policy@staging' %}"
        "{% for i in range(3) %}{{ i }}{% endfor %}{{ dict(a=1) }}"
    )
    assert analyze(source) == TemplateInfo(
        variables=frozenset({"customer", "tickets"}), includes=("policy@staging", "tone")
    )


def test_a_syntax_error_names_its_message_and_line() -> None:
    with pytest.raises(TemplateProblem) as caught:
        analyze("fine\n{% for x in y %}\n{{ x }")
    assert caught.value.line == 3
    assert caught.value.detail.startswith("line 3: ")
    assert caught.value.status == 422


@pytest.mark.parametrize(
    "source",
    [
        "{% include name %}",
        "{% include 'a' ~ b %}",
        "{% include ['a', 'b'] %}",
        "{% include 'a' if x else 'b' %}",
    ],
)
def test_an_include_must_be_a_string_literal(source: str) -> None:
    with pytest.raises(TemplateProblem, match="must name its template as a string"):
        analyze(source)


@pytest.mark.parametrize(
    "source",
    [
        "{% extends 'base' %}",
        "{% import 'macros' as m %}",
        "{% from 'macros' import m %}",
        "{% extends base_name %}",
    ],
)
def test_extends_and_imports_are_refused(source: str) -> None:
    with pytest.raises(TemplateProblem, match=r"only `\{% include"):
        analyze(source)


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../policy", "Policy", "policy@", "@staging", "a@b@c", "-x", "a" * 101],
)
def test_include_names_must_be_name_or_name_at_label(name: str) -> None:
    with pytest.raises(TemplateProblem, match="is not a template name"):
        analyze(f"{{% include '{name}' %}}")


def test_include_names_may_carry_a_label() -> None:
    info = analyze("{% include 'company-policy.v2@prod_eu' %}{% include '0x' %}")
    assert info.includes == ("company-policy.v2@prod_eu", "0x")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% include 'a' ignore missing %}", "ignore missing"),
        ("{% autoescape true %}x{% endautoescape %}", "autoescape"),
        ("{{ x|pprint }}", "unknown filter `pprint`"),
        ("{{ x|safe }}", "unknown filter `safe`"),
        ("{% if x is shiny %}{% endif %}", "unknown test `shiny`"),
        ("{{ " + "9" * 5000 + " }}", "cannot be parsed"),
    ],
)
def test_features_prompts_do_not_support_are_refused(source: str, message: str) -> None:
    with pytest.raises(TemplateProblem, match=message):
        analyze(source)


def test_source_size_is_capped_before_parsing() -> None:
    with pytest.raises(TemplateProblem) as caught:
        analyze("x" * 65_537)
    assert caught.value.limit == "max_source_chars"
    assert analyze("x" * 10, limits=RenderLimits(max_source_chars=10)).variables == frozenset()


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + "(" * 30_000 + "1" + ")" * 30_000 + " }}",
        "{% if x %}" * 6_000,
        "{{ x" + ".a" * 30_000 + " }}",
        "{{ " + "[" * 30_000 + " }}",
        "{{ 1" + "+1" * 30_000 + " }}",
    ],
)
def test_hostile_nesting_is_a_problem_not_a_crash(source: str) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateProblem):
        analyze(source)
    assert time.perf_counter() - started < 2


def test_analysis_never_evaluates_constants() -> None:
    started = time.perf_counter()
    info = analyze("{{ 9**(9**9) }}{{ 'a'|center(999999999) }}{{ 'a' * 10**9 }}{{ x }}")
    assert info.variables == {"x"}
    assert time.perf_counter() - started < 0.5


def test_stock_sandbox_evaluates_output_at_compile_time_even_unoptimized() -> None:
    """Why `optimized=False` alone is not enough: Jinja folds constant `{{ }}` output while
    compiling unless `finalize` needs the context, so `{{ 9**(9**9) }}` hangs `from_string`."""
    calls = []

    def probe(value: str) -> str:
        calls.append(value)
        return value

    stock = ImmutableSandboxedEnvironment(optimized=False)
    stock.filters["probe"] = probe
    stock.from_string("{{ 'compiled'|probe }}")
    assert calls == ["compiled"]

    @pass_context
    def contextual_finalize(context: object, value: object) -> object:
        return value

    safer = ImmutableSandboxedEnvironment(optimized=False, finalize=contextual_finalize)
    safer.filters["probe"] = probe
    safer.from_string("{{ 'not yet'|probe }}")
    assert calls == ["compiled"]


def test_compiling_hostile_constants_is_instant() -> None:
    engine = Engine()
    started = time.perf_counter()
    engine.check(
        "{{ 9**(9**9) }}{{ 'a'|center(999999999) }}{{ 10**10**10 ~ 'x' * 10**10 }}"
        "{{ '%999999999s' % 1 }}{{ '{:999999999}'.format(1) }}{% if 9**9**9 %}{% endif %}",
        RenderLimits(),
    )
    assert time.perf_counter() - started < 0.5


async def test_check_parses_and_compiles_in_a_worker(renderer: Renderer) -> None:
    info = await renderer.check("{{ a }}{% include 'b@c' %}")
    assert info == TemplateInfo(variables=frozenset({"a"}), includes=("b@c",))
    with pytest.raises(TemplateProblem) as caught:
        await renderer.check("{% for %}", field="version.messages.0.content")
    assert caught.value.errors is not None
    assert caught.value.errors[0]["field"] == "version.messages.0.content"


async def test_check_of_hostile_source_ends_within_two_seconds(renderer: Renderer) -> None:
    # About a second of parsing and compiling in one process: here it is the worker's.
    source = "{% macro m(" + "a," * 32_000 + "b) %}{% endmacro %}"
    assert len(source) <= 65_536
    started = time.perf_counter()
    with pytest.raises((TemplateProblem, LimitExceeded)):
        await renderer.check(source)
    assert time.perf_counter() - started < 2
