"""One scoring function per evaluator type: a case's output in, `(score, reason)` out.

A scorer that cannot compare (no expected value, an output that is not JSON, a missing field)
raises `Unscorable` with the reason; the case then scores 0 on that evaluator. Every input is
bounded (the output length, the regex's time), so the functions that do no I/O stay quick on
the event loop; the regex runs in a thread, with the GIL released, under a time limit.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

from promptlogic.errors import InvalidInput
from promptlogic.evals.paths import MissingField, Step, follow, parse_path
from promptlogic.evals.specs import (
    ContainsSpec,
    CostSpec,
    ExactSpec,
    JsonFieldSpec,
    JsonSchemaSpec,
    JudgeSpec,
    LatencySpec,
    NumericSpec,
    RegexSpec,
)
from promptlogic.evals.values import as_number, is_json_value, json_equal, shown
from promptlogic.rendering.schema import OUTPUT_FIELD, output_schema

MAX_OUTPUT_CHARS = 1_000_000  # scored at all (about 250k tokens, beyond any sane answer)
MAX_MATCHED_CHARS = 100_000  # what a regex searches
REGEX_TIMEOUT_SECONDS = 0.1
FLOAT_ROUNDING = 1e-9  # numbers this close (relatively) are equal: 0.1 + 0.2 is 0.3

Outcome = tuple[float, str]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """A dataset case after its run: what the evaluators see.

    `output` is None when the run failed (`error` says why); `parsed` is the output as JSON
    when the version has a response format (else None, and evaluators parse `output`
    themselves); `expected` is the case's text or JSON expectation, None when it has none.
    """

    inputs: dict[str, Any]
    output: str | None
    parsed: Any = None
    expected: Any = None
    latency_ms: int | None = None
    cost: float | None = None
    error: str | None = None


# The injected I/O: the schema check of the render pool, and the judge prompt's run.
Validate = Callable[[dict[str, Any], Mapping[str, Any]], Awaitable[list[dict[str, str]]]]
Judge = Callable[[JudgeSpec, CaseResult], Awaitable[tuple[float, str]]]


class Unscorable(Exception):
    """The evaluator cannot compare this case; `reason` says why (the score is 0)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _verdict(passed: bool, if_passed: str, if_failed: str) -> Outcome:
    return (1.0, if_passed) if passed else (0.0, if_failed)


def output_text(case: CaseResult) -> str:
    if case.output is None:
        raise Unscorable("the run produced no output")
    if len(case.output) > MAX_OUTPUT_CHARS:
        raise Unscorable(f"the output is too long to score (over {MAX_OUTPUT_CHARS:,} characters)")
    return case.output


class _NotJson:
    """The output does not parse as JSON (distinct from a JSON `null`)."""


NOT_JSON = _NotJson()


def output_json(case: CaseResult) -> Any:
    """The output as JSON: the run's parsed output, else the text parsed; `NOT_JSON` if not."""
    if case.parsed is not None:
        return case.parsed
    try:
        return json.loads(output_text(case))
    except (ValueError, RecursionError):
        return NOT_JSON


def _required_json(case: CaseResult) -> Any:
    value = output_json(case)
    if value is NOT_JSON:
        raise Unscorable(f"the output is not JSON: {shown(case.output)}")
    return value


def _expected(case: CaseResult) -> Any:
    if case.expected is None:
        raise Unscorable("the case has no expected value to compare with")
    return case.expected


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _folded(text: str, case_sensitive: bool) -> str:
    return text if case_sensitive else text.casefold()


def exact(spec: ExactSpec, case: CaseResult) -> Outcome:
    expected = _expected(case)
    if is_json_value(expected):
        parsed = output_json(case)
        if parsed is not NOT_JSON:
            return _verdict(
                json_equal(parsed, expected),
                "equals the expected value",
                f"expected {shown(expected)}, got {shown(parsed)}",
            )
    want, got = _as_text(expected), output_text(case)
    if spec.trim:
        want, got = want.strip(), got.strip()
    same = _folded(want, spec.case_sensitive) == _folded(got, spec.case_sensitive)
    return _verdict(same, "equals the expected text", f"expected {shown(want)}, got {shown(got)}")


def contains(spec: ContainsSpec, case: CaseResult) -> Outcome:
    wanted = spec.value if spec.value is not None else _as_text(_expected(case))
    text = output_text(case)
    found = _folded(wanted, spec.case_sensitive) in _folded(text, spec.case_sensitive)
    return _verdict(found, f"contains {shown(wanted)}", f"does not contain {shown(wanted)}")


@lru_cache(maxsize=256)
def _compiled(pattern: str, flags: int) -> regex.Pattern[str]:
    return regex.compile(pattern, flags)


def _search(pattern: regex.Pattern[str], text: str) -> regex.Match[str] | None:
    return pattern.search(text, timeout=REGEX_TIMEOUT_SECONDS, concurrent=True)


async def matches(spec: RegexSpec, case: CaseResult) -> Outcome:
    text = output_text(case)[:MAX_MATCHED_CHARS]
    where = "the output" if len(text) == len(case.output or "") else "its first 100,000 characters"
    try:
        found = await asyncio.to_thread(_search, _compiled(spec.pattern, spec.flag_bits), text)
    except TimeoutError:
        return 0.0, (
            f"the pattern took longer than {REGEX_TIMEOUT_SECONDS} s on {where} "
            "(catastrophic backtracking?), so it counts as no match"
        )
    if found is None:
        return 0.0, f"the pattern does not match {where}"
    return 1.0, f"the pattern matches {shown(found[0])}"


def _schema_problem(problem: Mapping[str, str]) -> str:
    field = problem.get("field", "").removeprefix("variables.").removeprefix(OUTPUT_FIELD)
    where = f"`{field.removeprefix('.')}`" if field else "the output"
    return f"{where} {problem.get('message', 'is invalid')}"


async def satisfies_schema(spec: JsonSchemaSpec, case: CaseResult, validate: Validate) -> Outcome:
    value = _required_json(case)
    try:
        problems = await validate(output_schema(dict(spec.schema_)), {OUTPUT_FIELD: value})
    except InvalidInput as invalid:  # a deadline or a limit of the pool: this schema or value
        raise Unscorable(f"the schema could not be checked: {invalid.detail}") from None
    if not problems:
        return 1.0, "satisfies the schema"
    listed = "; ".join(_schema_problem(problem) for problem in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return 0.0, f"does not satisfy the schema: {listed}{more}"


def _field(value: Any, steps: tuple[Step, ...], whose: str) -> Any:
    try:
        return follow(value, steps)
    except MissingField as missing:
        raise Unscorable(f"{missing} in {whose}") from None


def _expected_at(case: CaseResult, steps: tuple[Step, ...]) -> Any:
    """The expected value's field at `steps` when the expected value is a container the path
    walks into (an object for `a.b`, a list for `[0].a`); else the expected value itself."""
    expected = _expected(case)
    container = list if isinstance(steps[0], int) else dict
    if isinstance(expected, container):
        return _field(expected, steps, "the expected value")
    return expected


def field_equals(spec: JsonFieldSpec, case: CaseResult) -> Outcome:
    steps = parse_path(spec.path)
    actual = _field(_required_json(case), steps, "the output")
    expected = _expected_at(case, steps)
    return _verdict(
        json_equal(actual, expected),
        f"`{spec.path}` is {shown(actual)} as expected",
        f"`{spec.path}`: expected {shown(expected)}, got {shown(actual)}",
    )


def _number(value: float) -> str:
    return f"{value:.10g}"


def _numbers(spec: NumericSpec, case: CaseResult) -> tuple[float, float]:
    """The output's number and the expected one (at `path` when there is one)."""
    if spec.path is None:
        parsed = output_json(case)
        value = output_text(case) if parsed is NOT_JSON else parsed
        expected = _expected(case)
        where = "the output"
    else:
        steps = parse_path(spec.path)
        value = _field(_required_json(case), steps, "the output")
        expected = _expected_at(case, steps)
        where = f"`{spec.path}`"
    actual, wanted = as_number(value), as_number(expected)
    if actual is None:
        raise Unscorable(f"{where} is not a number: {shown(value)}")
    if wanted is None:
        raise Unscorable(f"the expected value is not a number: {shown(expected)}")
    return actual, wanted


def within_tolerance(spec: NumericSpec, case: CaseResult) -> Outcome:
    actual, expected = _numbers(spec, case)
    allowed = spec.tolerance * abs(expected) if spec.relative else spec.tolerance
    difference = abs(actual - expected)
    close = difference <= allowed or math.isclose(actual, expected, rel_tol=FLOAT_ROUNDING)
    tolerance = f"{spec.tolerance:g} of |expected|" if spec.relative else _number(allowed)
    return _verdict(
        close,
        f"{_number(actual)} is within {tolerance} of {_number(expected)}",
        f"{_number(actual)} is {_number(difference)} from the expected {_number(expected)}, "
        f"more than the tolerance ({_number(allowed)})",
    )


def fast_enough(spec: LatencySpec, case: CaseResult) -> Outcome:
    if case.latency_ms is None:
        raise Unscorable("latency unknown")
    limit = f"{spec.max_ms:g} ms"
    return _verdict(
        case.latency_ms <= spec.max_ms,
        f"took {case.latency_ms} ms, within {limit}",
        f"took {case.latency_ms} ms, over the limit of {limit}",
    )


def _usd(amount: float) -> str:
    return "$" + f"{amount:.10f}".rstrip("0").rstrip(".")


def cheap_enough(spec: CostSpec, case: CaseResult) -> Outcome:
    if case.cost is None:
        raise Unscorable("cost unknown")
    return _verdict(
        case.cost <= spec.max_usd,
        f"cost {_usd(case.cost)}, within {_usd(spec.max_usd)}",
        f"cost {_usd(case.cost)}, over the limit of {_usd(spec.max_usd)}",
    )


async def judged(spec: JudgeSpec, case: CaseResult, judge: Judge) -> Outcome:
    score, reason = await judge(spec, case)
    if not math.isfinite(score):
        return 0.0, f"the judge `{spec.prompt}` gave no usable score"
    return min(max(score, 0.0), 1.0), reason or f"the judge `{spec.prompt}` gave no reason"
