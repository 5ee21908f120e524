"""Evaluators as data: each type's pass and fail, the specs' validation, the case's weighted
verdict, and the judge through the real run path against the fake upstream."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from promptlogic.evals.evaluators import (
    CaseResult,
    CaseScore,
    EvaluatorSpecs,
    JudgeSpec,
    case_of_run,
    make_validate,
    score_case,
)
from promptlogic.evals.judge import make_judge
from promptlogic.evals.paths import MissingField, PathError, follow, parse_path
from promptlogic.runs.pipeline import RunServices
from promptlogic.runs.service import RunRecord
from promptlogic.tenancy.principal import Principal
from promptlogic.tenancy.roles import Scope
from tests.fakes.openai_server import Fail, Reply
from tests.runs.support import make_prompt, use_fake

SPECS = TypeAdapter(EvaluatorSpecs)


def specs(*bodies: dict[str, Any]) -> list[Any]:
    return SPECS.validate_python(list(bodies))


def refusal(*bodies: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Each (location, message) pydantic gives for `bodies`."""
    with pytest.raises(ValidationError) as refused:
        specs(*bodies)
    return [(error["loc"], error["msg"]) for error in refused.value.errors()]


def case(output: str | None, expected: Any = None, **fields: Any) -> CaseResult:
    inputs = {"ticket": "printer on fire"}
    return CaseResult(inputs=inputs, output=output, expected=expected, **fields)


async def no_validate(schema: dict[str, Any], value: Any) -> list[dict[str, str]]:
    raise AssertionError("this evaluator checks no schema")


async def no_judge(spec: JudgeSpec, case: CaseResult) -> tuple[float, str]:
    raise AssertionError("this evaluator asks no judge")


async def scored(body: dict[str, Any], result: CaseResult, **tools: Any) -> tuple[float, str]:
    """One evaluator's (score, reason) of `result`, checking `passed` agrees with the threshold."""
    spec = specs(body)
    verdict = await score_case(
        spec,
        result,
        validate=tools.get("validate", no_validate),
        judge=tools.get("judge", no_judge),
    )
    (only,) = verdict.scores
    assert only.passed is (only.score >= spec[0].threshold)
    assert only.reason
    return only.score, only.reason


# --- specs -----------------------------------------------------------------------------------


def test_specs_have_weight_one_and_threshold_one_by_default_but_a_judge_half():
    exact, judge = specs({"type": "exact"}, {"type": "judge", "prompt": "grader"})
    assert (exact.weight, exact.threshold) == (1.0, 1.0)
    assert (judge.weight, judge.threshold) == (1.0, 0.5)
    assert judge.selector == ("label", "production")


def test_a_judge_takes_a_label_or_a_version_not_both():
    (by_version,) = specs({"type": "judge", "prompt": "grader", "version": 3})
    assert by_version.selector == ("version", 3)
    (by_label,) = specs({"type": "judge", "prompt": "grader", "label": "staging"})
    assert by_label.selector == ("label", "staging")
    both = {"type": "judge", "prompt": "grader", "label": "staging", "version": 3}
    assert refusal(both)[0][0] == (0, "judge", "version")
    assert refusal({"type": "judge", "prompt": "Not A Name"})[0][0] == (0, "judge", "prompt")


def test_an_unknown_type_is_refused_naming_type():
    ((location, message),) = refusal({"type": "bleu"})
    assert location == (0,)
    assert "'type'" in message
    assert "bleu" in message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "regex"}, "pattern"),
        ({"type": "json_schema"}, "schema"),
        ({"type": "json_field"}, "path"),
        ({"type": "latency"}, "max_ms"),
        ({"type": "cost"}, "max_usd"),
        ({"type": "judge"}, "prompt"),
    ],
)
def test_a_missing_required_parameter_is_named(body, field):
    assert refusal(body) == [((0, body["type"], field), "Field required")]


def test_extra_fields_are_refused_by_name():
    ((location, message),) = refusal({"type": "exact", "case_sensitve": False})
    assert location == (0, "exact", "case_sensitve")
    assert "not permitted" in message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "exact", "case_sensitive": "no"}, "case_sensitive"),
        ({"type": "exact", "weight": "2"}, "weight"),
        ({"type": "contains", "value": 3}, "value"),
        ({"type": "judge", "prompt": "grader", "version": True}, "version"),
        ({"type": "numeric", "tolerance": "0.5"}, "tolerance"),
        ({"type": "exact", "weight": 0}, "weight"),
        ({"type": "exact", "weight": 1001}, "weight"),
        ({"type": "exact", "threshold": 1.5}, "threshold"),
        ({"type": "numeric", "tolerance": -1}, "tolerance"),
        ({"type": "latency", "max_ms": 0}, "max_ms"),
        ({"type": "cost", "max_usd": -0.01}, "max_usd"),
        ({"type": "regex", "pattern": "a", "flags": ["x"]}, "flags"),
    ],
)
def test_wrong_types_and_out_of_range_values_are_refused(body, field):
    assert refusal(body)[0][0][:3] == (0, body["type"], field)


def test_a_bad_regex_is_refused_naming_pattern():
    ((location, message),) = refusal({"type": "regex", "pattern": "(unclosed"})
    assert location == (0, "regex", "pattern")
    assert "not a valid regular expression" in message
    assert refusal({"type": "regex", "pattern": "a" * 1001})[0][0] == (0, "regex", "pattern")


def test_a_json_schema_must_be_a_valid_schema_of_bounded_size():
    ((location, message),) = refusal({"type": "json_schema", "schema": {"type": "nonsense"}})
    assert location == (0, "json_schema", "schema")
    assert "not a valid JSON Schema" in message
    remote = {"$ref": "https://example.com/schema.json"}
    assert "only local references" in refusal({"type": "json_schema", "schema": remote})[0][1]
    huge = {"enum": ["x" * 1000] * 60}
    ((location, message),) = refusal({"type": "json_schema", "schema": huge})
    assert "bytes as JSON" in message


def test_a_json_schema_spec_reads_and_writes_schema_by_its_api_name():
    (spec,) = SPECS.validate_json('[{"type": "json_schema", "schema": {"type": "object"}}]')
    assert spec.model_dump()["schema"] == {"type": "object"}
    assert json.loads(spec.model_dump_json())["schema"] == {"type": "object"}


def test_specs_are_at_least_one_and_at_most_twenty():
    assert refusal()[0][1].startswith("List should have at least 1 item")
    assert refusal(*[{"type": "exact"}] * 21)[0][1].startswith("List should have at most 20")


# --- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("priority", ("priority",)),
        ("a.b[0].c", ("a", "b", 0, "c")),
        ("$.a.b", ("a", "b")),
        ("$[2]", (2,)),
        ("[0].name", (0, "name")),
        ("matrix[1][2]", ("matrix", 1, 2)),
        ("first name.x-id", ("first name", "x-id")),
    ],
)
def test_paths_parse_to_keys_and_indices(text, steps):
    assert parse_path(text) == steps


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "names no field"),
        ("$", "after `$`"),
        ("$.", "names no field"),
        ("a..b", "expected a field name at position 3"),
        (".a", "expected a field name at position 1"),
        ("a.", "expected a field name at position 3"),
        ("a[x]", "expected an index such as `[0]` at position 2"),
        ("a[-1]", "expected an index"),
        ("a[0]b", "expected `.` or `[` at position 5"),
        ("a]", "expected `.` or `[` at position 2"),
        ("a" * 501, "at most 500 characters"),
        (".".join("k" * 51), "at most 50 steps"),
    ],
)
def test_bad_paths_say_what_is_wrong_and_where(text, problem):
    with pytest.raises(PathError, match=problem.replace("[", r"\[").replace("$", r"\$")):
        parse_path(text)
    ((location, message),) = refusal({"type": "json_field", "path": text})
    assert location == (0, "json_field", "path")
    assert problem in message


def test_following_a_path_names_where_it_stopped():
    value = {"items": [{"sku": "A1"}], "note": "x"}
    assert follow(value, parse_path("items[0].sku")) == "A1"
    for path, reason in [
        ("items[1].sku", "`items` has 1 items, no index 1"),
        ("items[0].price", "no field `items[0].price`"),
        ("note.length", "`note` is a string, not an object"),
        ("note[0]", "`note` is a string, not a list"),
        ("[0]", "`the root` is an object, not a list"),
    ]:
        with pytest.raises(MissingField) as missing:
            follow(value, parse_path(path))
        assert str(missing.value) == reason


# --- exact and contains ----------------------------------------------------------------------


async def test_exact_compares_text_case_sensitively_and_trimmed_by_default():
    same = await scored({"type": "exact"}, case("high", "high"))
    assert same == (1.0, "equals the expected text")
    assert await scored({"type": "exact"}, case("low", "high")) == (
        0.0,
        "expected 'high', got 'low'",
    )
    assert (await scored({"type": "exact"}, case("High", "high")))[0] == 0.0
    assert (await scored({"type": "exact", "case_sensitive": False}, case("High", "high")))[0] == 1
    assert (await scored({"type": "exact"}, case("  high\n", "high")))[0] == 1.0
    assert (await scored({"type": "exact", "trim": False}, case("  high\n", "high")))[0] == 0.0


async def test_exact_compares_json_when_the_expected_value_is_json():
    expected = {"priority": "high", "tags": [1, 2.0]}
    same = case('{"tags": [1.0, 2], "priority": "high"}', expected)
    assert await scored({"type": "exact"}, same) == (1.0, "equals the expected value")
    differs = case('{"tags": [1, 2], "priority": "low"}', expected)
    score, reason = await scored({"type": "exact"}, differs)
    assert score == 0.0
    assert reason.startswith('expected {"priority": "high"')
    assert (await scored({"type": "exact"}, case("3", 3)))[0] == 1.0
    assert (await scored({"type": "exact"}, case("1", True)))[0] == 0.0  # true is not 1
    # The run's parsed output (a response format) is used as it is.
    parsed = case("ignored text", expected, parsed={"priority": "high", "tags": [1, 2]})
    assert (await scored({"type": "exact"}, parsed))[0] == 1.0
    # Output that is not JSON is compared as text with the expected value's JSON.
    assert await scored({"type": "exact"}, case("three", 3)) == (0.0, "expected '3', got 'three'")
    assert (await scored({"type": "exact", "case_sensitive": False}, case("TRUE!", True)))[0] == 0


async def test_exact_without_an_expected_value_fails_saying_so():
    assert await scored({"type": "exact"}, case("high")) == (
        0.0,
        "the case has no expected value to compare with",
    )


async def test_contains_looks_for_the_expected_text_ignoring_case_by_default():
    assert await scored({"type": "contains"}, case("Priority: HIGH.", "high")) == (
        1.0,
        "contains 'high'",
    )
    cased = {"type": "contains", "case_sensitive": True}
    assert await scored(cased, case("Priority: HIGH.", "high")) == (0.0, "does not contain 'high'")
    given = {"type": "contains", "value": "refund"}
    assert (await scored(given, case("No refund is possible.", "ignored")))[0] == 1.0
    assert (await scored(given, case("We cannot help.")))[0] == 0.0
    assert (await scored({"type": "contains"}, case("anything")))[0] == 0.0


async def test_long_values_are_cut_short_in_reasons():
    score, reason = await scored({"type": "exact"}, case("y" * 5000, "x" * 5000))
    assert score == 0.0
    assert len(reason) < 500
    assert "…" in reason


# --- regex -----------------------------------------------------------------------------------


async def test_regex_matches_anywhere_with_flags():
    pattern = {"type": "regex", "pattern": r"order #\d+"}
    assert await scored(pattern, case("Your order #1234 shipped")) == (
        1.0,
        "the pattern matches 'order #1234'",
    )
    assert await scored(pattern, case("Your ORDER #1234 shipped")) == (
        0.0,
        "the pattern does not match the output",
    )
    assert (await scored({**pattern, "flags": ["i"]}, case("Your ORDER #1234 shipped")))[0] == 1
    assert (await scored({"type": "regex", "pattern": "^b$"}, case("a\nb")))[0] == 0.0
    assert (await scored({"type": "regex", "pattern": "^b$", "flags": ["m"]}, case("a\nb")))[0] == 1
    assert (await scored({"type": "regex", "pattern": "a.b", "flags": ["s"]}, case("a\nb")))[0] == 1


async def test_a_catastrophic_pattern_fails_quickly():
    started = time.perf_counter()
    nested = await scored({"type": "regex", "pattern": "(a+)+$"}, case("a" * 50 + "b"))
    assert nested == (0.0, "the pattern does not match the output")
    score, reason = await scored({"type": "regex", "pattern": "(a|aa)+$"}, case("a" * 60 + "b"))
    assert score == 0.0
    assert "took longer than 0.1 s" in reason
    assert time.perf_counter() - started < 2


async def test_regex_searches_the_first_hundred_thousand_characters():
    late = case("x" * 100_000 + "needle")
    score, reason = await scored({"type": "regex", "pattern": "needle"}, late)
    assert (score, reason) == (0.0, "the pattern does not match its first 100,000 characters")


# --- json_schema -----------------------------------------------------------------------------

TRIAGE_SCHEMA = {
    "$defs": {"priority": {"enum": ["low", "high"]}},
    "type": "object",
    "properties": {"priority": {"$ref": "#/$defs/priority"}, "reply": {"type": "string"}},
    "required": ["priority", "reply"],
}


async def test_json_schema_checks_the_output_in_the_render_pool(renderer):
    validate = make_validate(renderer, uuid.uuid4())
    spec = {"type": "json_schema", "schema": TRIAGE_SCHEMA}
    good = case('{"priority": "high", "reply": "On it."}')
    assert await scored(spec, good, validate=validate) == (1.0, "satisfies the schema")
    bad = case('{"priority": "urgent"}')
    score, reason = await scored(spec, bad, validate=validate)
    assert score == 0.0
    assert reason == (
        'does not satisfy the schema: `priority` must be one of ["low", "high"]; '
        "`reply` is required"
    )
    assert (await scored(spec, case('"just text"'), validate=validate))[1].startswith(
        "does not satisfy the schema: the output must be of type"
    )
    assert await scored(spec, case("On it."), validate=validate) == (
        0.0,
        "the output is not JSON: 'On it.'",
    )


# --- json_field ------------------------------------------------------------------------------


async def test_json_field_compares_the_field_with_the_expected_field():
    expected = {"priority": "high", "items": [{"sku": "A1"}, {"sku": "B2"}]}
    output = json.dumps({"priority": "high", "items": [{"sku": "A1"}, {"sku": "C3"}]})
    assert await scored({"type": "json_field", "path": "priority"}, case(output, expected)) == (
        1.0,
        "`priority` is 'high' as expected",
    )
    assert await scored({"type": "json_field", "path": "items[1].sku"}, case(output, expected)) == (
        0.0,
        "`items[1].sku`: expected 'B2', got 'C3'",
    )
    assert (await scored({"type": "json_field", "path": "$.items[0]"}, case(output, expected)))[
        0
    ] == 1.0


async def test_json_field_compares_with_a_plain_expected_value_itself():
    output = '{"priority": "high", "count": 2, "urgent": true}'
    assert (await scored({"type": "json_field", "path": "priority"}, case(output, "high")))[0] == 1
    assert (await scored({"type": "json_field", "path": "count"}, case(output, 2.0)))[0] == 1
    assert (await scored({"type": "json_field", "path": "urgent"}, case(output, 1)))[0] == 0
    at_root = case('[{"name": "Ada"}]', [{"name": "Ada"}])
    assert (await scored({"type": "json_field", "path": "[0].name"}, at_root))[0] == 1


async def test_json_field_fails_naming_a_missing_path():
    spec = {"type": "json_field", "path": "customer.email"}
    assert await scored(spec, case('{"customer": {}}', "a@b.c")) == (
        0.0,
        "no field `customer.email` in the output",
    )
    assert await scored(spec, case('{"customer": {"email": "a@b.c"}}', {"customer": {}})) == (
        0.0,
        "no field `customer.email` in the expected value",
    )
    assert await scored(spec, case("not json", "a@b.c")) == (
        0.0,
        "the output is not JSON: 'not json'",
    )


# --- numeric ---------------------------------------------------------------------------------


async def test_numeric_within_an_absolute_tolerance():
    assert await scored({"type": "numeric"}, case("42", 42)) == (1.0, "42 is within 0 of 42")
    half = {"type": "numeric", "tolerance": 0.5}
    assert (await scored(half, case("41.5", 42)))[0] == 1.0
    assert await scored({"type": "numeric", "tolerance": 0.4}, case("41.5", 42)) == (
        0.0,
        "41.5 is 0.5 from the expected 42, more than the tolerance (0.4)",
    )
    assert (await scored({"type": "numeric"}, case(" 12.50 ", "12.5")))[0] == 1.0
    assert (await scored({"type": "numeric"}, case("0.30000000000000004", 0.3)))[0] == 1.0


async def test_numeric_within_a_relative_tolerance_at_a_path():
    spec = {"type": "numeric", "path": "total", "tolerance": 0.1, "relative": True}
    expected = {"total": 200}
    assert (await scored(spec, case('{"total": 219}', expected)))[0] == 1.0
    assert await scored(spec, case('{"total": 221}', expected)) == (
        0.0,
        "221 is 21 from the expected 200, more than the tolerance (20)",
    )
    assert (await scored(spec, case('{"total": "190.5"}', 200)))[0] == 1.0


async def test_numeric_fails_on_what_is_not_a_number():
    assert await scored({"type": "numeric"}, case("about forty", 42)) == (
        0.0,
        "the output is not a number: 'about forty'",
    )
    assert (await scored({"type": "numeric"}, case("true", 1)))[1].startswith("the output is not")
    assert (await scored({"type": "numeric"}, case("nan", 1)))[0] == 0.0
    assert await scored({"type": "numeric", "path": "total"}, case('{"total": [1]}', 1)) == (
        0.0,
        "`total` is not a number: [1]",
    )
    assert await scored({"type": "numeric"}, case("3", "three")) == (
        0.0,
        "the expected value is not a number: 'three'",
    )


# --- latency and cost ------------------------------------------------------------------------


async def test_latency_at_most_the_limit_passes():
    spec = {"type": "latency", "max_ms": 1000}
    assert await scored(spec, case("x", latency_ms=800)) == (1.0, "took 800 ms, within 1000 ms")
    assert (await scored(spec, case("x", latency_ms=1000)))[0] == 1.0
    assert await scored(spec, case("x", latency_ms=1200)) == (
        0.0,
        "took 1200 ms, over the limit of 1000 ms",
    )


async def test_cost_below_the_limit_passes_and_an_unknown_cost_fails():
    spec = {"type": "cost", "max_usd": 0.001}
    assert await scored(spec, case("x", cost=0.0000045)) == (
        1.0,
        "cost $0.0000045, within $0.001",
    )
    assert await scored(spec, case("x", cost=0.002)) == (
        0.0,
        "cost $0.002, over the limit of $0.001",
    )
    assert await scored(spec, case("x", cost=None)) == (0.0, "cost unknown")


# --- the case's verdict ----------------------------------------------------------------------


async def fixed_judge(spec: JudgeSpec, case: CaseResult) -> tuple[float, str]:
    return 0.6, "mostly right"


async def test_a_case_scores_the_weighted_mean_and_passes_when_every_evaluator_passes():
    evaluators = specs(
        {"type": "exact", "weight": 3},
        {"type": "contains", "value": "urgent"},
        {"type": "judge", "prompt": "grader"},
    )
    verdict = await score_case(
        evaluators, case("high", "high"), validate=no_validate, judge=fixed_judge
    )
    assert [(s.score, s.passed) for s in verdict.scores] == [
        (1.0, True),
        (0.0, False),
        (0.6, True),
    ]
    assert verdict.score == pytest.approx((3 * 1.0 + 0.0 + 0.6) / 5)
    assert verdict.passed is False
    # A threshold of 0 makes an evaluator informational: it never fails the case.
    lenient = specs({"type": "exact"}, {"type": "contains", "value": "urgent", "threshold": 0})
    passing = await score_case(lenient, case("high", "high"), validate=no_validate, judge=no_judge)
    assert (passing.passed, passing.score) == (True, 0.5)


async def test_a_stricter_threshold_fails_the_same_judge_score():
    strict = specs({"type": "judge", "prompt": "grader", "threshold": 0.7})
    verdict = await score_case(strict, case("x"), validate=no_validate, judge=fixed_judge)
    assert (verdict.score, verdict.passed) == (0.6, False)
    assert verdict.scores[0].reason == "mostly right"


async def test_a_failed_run_fails_every_evaluator_whatever_the_threshold():
    evaluators = specs(
        {"type": "exact"},
        {"type": "latency", "max_ms": 10_000, "threshold": 0},
        {"type": "cost", "max_usd": 1},
        {"type": "judge", "prompt": "grader"},
    )
    failed = case(None, "high", latency_ms=5, cost=0.0, error="The provider timed out.")
    verdict = await score_case(evaluators, failed, validate=no_validate, judge=no_judge)
    assert verdict == CaseScore(
        score=0.0,
        passed=False,
        scores=tuple(verdict.scores[0] for _ in evaluators),
    )
    assert verdict.scores[0].reason == "the run failed: The provider timed out."
    assert not verdict.scores[1].passed


async def test_score_case_needs_an_evaluator():
    with pytest.raises(ValueError, match="at least one evaluator"):
        await score_case([], case("x"), validate=no_validate, judge=no_judge)


def test_a_case_is_made_from_its_runs_record():
    record = RunRecord(
        tenant_id=uuid.uuid4(),
        prompt="triage",
        principal_type="api_key",
        principal_name="app",
        status="succeeded",
        latency_ms=120,
        inputs={"ticket": "printer on fire"},
        output='{"priority": "high"}',
        parsed={"priority": "high"},
        cost=Decimal("0.0000045"),
    )
    made = case_of_run(record, expected={"priority": "high"})
    assert made == CaseResult(
        inputs={"ticket": "printer on fire"},
        output='{"priority": "high"}',
        parsed={"priority": "high"},
        expected={"priority": "high"},
        latency_ms=120,
        cost=0.0000045,
    )
    record.status, record.error = "timed_out", {"type": "timeout", "detail": "Too slow."}
    assert case_of_run(record, expected=None).error == "Too slow."
    assert case_of_run(record, expected=None).output is None


# --- the judge, through the run path --------------------------------------------------------

GRADE = {
    "type": "object",
    "properties": {"score": {"type": "number"}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
}
GRADER = {
    "messages": [
        {"role": "system", "content": "Grade the answer from 0 to 1."},
        {
            "role": "user",
            "content": "Inputs: {{ inputs | tojson }}\nAnswer: {{ output }}\n"
            "Expected: {{ expected | tojson }}",
        },
    ],
    "model": {"name": "gpt-4o-mini"},
    "input_schema": {
        "type": "object",
        "properties": {"inputs": {"type": "object"}, "output": {"type": "string"}, "expected": {}},
        "required": ["inputs", "output"],
    },
    "response_format": GRADE,
}


@pytest.fixture
async def grade(client, admin, fake_openai, app, tenant):
    """Score a case with a judge prompt (`grader`, or `loose-grader` without a response
    format), run as `acme`'s admin key."""
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "grader", **GRADER)
    await make_prompt(client, admin, "loose-grader", **{**GRADER, "response_format": None})
    principal = Principal(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        tenant_name=tenant.name,
        key_id=admin.key.id,
        key_name=admin.key.name,
        scopes=frozenset({Scope.ADMIN}),
    )
    judge = make_judge(RunServices.of(app.state), principal)

    async def grade(result: CaseResult, **spec: Any) -> tuple[float, str]:
        return await scored({"type": "judge", "prompt": "grader", **spec}, result, judge=judge)

    return grade


async def test_the_judge_grades_through_the_run_path(grade, fake_openai, client, admin, app):
    fake_openai.push(Reply({"score": 0.8, "reason": "Right priority, terse reply."}))
    answered = case('{"priority": "high"}', {"priority": "high"})
    assert await grade(answered) == (0.8, "Right priority, terse reply.")
    asked = fake_openai.last_request().body["messages"]
    assert asked[1]["content"] == (
        'Inputs: {"ticket": "printer on fire"}\nAnswer: {"priority": "high"}\n'
        'Expected: {"priority": "high"}'
    )
    await app.state.run_recorder.flush()
    runs = await client.get("/v1/runs", headers=admin.headers, params={"prompt": "grader"})
    (run,) = runs.json()["items"]
    assert (run["status"], run["label"], run["metadata"]) == (
        "succeeded",
        "production",
        {"eval_judge": "1"},
    )


async def test_the_judge_can_be_pinned_to_a_version(grade, fake_openai):
    fake_openai.push(Reply({"score": 0.2, "reason": "Wrong priority."}))
    score, reason = await grade(case("low", "high"), version=1)
    assert (score, reason) == (0.2, "Wrong priority.")


async def test_a_judge_answering_anything_else_scores_zero(grade, fake_openai):
    fake_openai.push(
        Reply({"score": 7, "reason": "Great!"}),  # within its response format, out of 0..1
        Reply({"score": True, "reason": "Great!"}),
        Reply({"verdict": "pass"}),
        Reply([0.5, "fine"]),
    )
    for prompt in ("grader", "loose-grader", "loose-grader", "loose-grader"):
        score, reason = await grade(case("high", "high"), prompt=prompt)
        assert score == 0.0
        assert reason.startswith(
            f'the judge `{prompt}` did not answer {{"score": 0..1, "reason": "..."}}: it answered '
        )


async def test_a_judge_that_cannot_run_scores_zero(grade, fake_openai):
    fake_openai.push(Reply("not json at all"))  # the response format refuses it
    score, reason = await grade(case("high", "high"))
    assert score == 0.0
    assert reason.startswith("the judge `grader` could not run: The model's output is not JSON")
    fake_openai.push(Fail(400, "bad request"))
    assert (await grade(case("high", "high")))[1].startswith("the judge `grader` could not run")
    missing = await grade(case("high", "high"), prompt="no-such-judge")
    assert missing[0] == 0.0
    assert "could not run" in missing[1]


async def test_a_judge_without_a_response_format_is_parsed_from_its_text(grade, fake_openai):
    fake_openai.push(Reply(json.dumps({"score": 1, "reason": "Exact."})), Reply("Looks fine"))
    assert await grade(case("high", "high"), prompt="loose-grader") == (1.0, "Exact.")
    score, reason = await grade(case("high", "high"), prompt="loose-grader")
    assert score == 0.0
    assert reason.endswith("it answered 'Looks fine'")
