"""Scoring one case of an eval: every evaluator's score and reason, and the case's verdict.

    specs = TypeAdapter(EvaluatorSpecs).validate_python(body["evaluators"])
    case = case_of_run(record, expected=case_row.expected)     # or CaseResult(...)
    scored = await score_case(
        specs, case,
        validate=make_validate(renderer, tenant_id),             # the render pool
        judge=make_judge(services, principal),                   # promptlogic.evals.judge
    )
    scored.score, scored.passed, [(s.score, s.passed, s.reason) for s in scored.scores]

Each evaluator scores 0..1 and passes when its score reaches its threshold. The case's score is
the weighted mean of its evaluators' scores; the case passes when every evaluator passes.

A failed run (`error` set, or no output) fails every evaluator, latency and cost included,
whatever the thresholds, with the reason "the run failed: …": a run that failed answered
nothing, and a failure must not pass a gate by being quick or cheap.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptlogic.evals import scorers
from promptlogic.evals.scorers import CaseResult, Judge, Outcome, Unscorable, Validate
from promptlogic.evals.specs import (
    ContainsSpec,
    CostSpec,
    EvaluatorSpec,
    EvaluatorSpecs,
    ExactSpec,
    JsonFieldSpec,
    JsonSchemaSpec,
    JudgeSpec,
    LatencySpec,
    NumericSpec,
    RegexSpec,
)
from promptlogic.evals.values import clipped
from promptlogic.rendering.shares import sharing

if TYPE_CHECKING:
    from promptlogic.rendering import Renderer
    from promptlogic.runs.service import RunRecord

__all__ = [
    "CaseResult",
    "CaseScore",
    "ContainsSpec",
    "CostSpec",
    "EvaluatorSpec",
    "EvaluatorSpecs",
    "ExactSpec",
    "JsonFieldSpec",
    "JsonSchemaSpec",
    "Judge",
    "JudgeSpec",
    "LatencySpec",
    "NumericSpec",
    "RegexSpec",
    "Score",
    "Validate",
    "case_of_run",
    "make_validate",
    "score_case",
]


@dataclass(frozen=True, slots=True)
class Score:
    """One evaluator's verdict on one case; `reason` is always set, short and readable."""

    score: float
    passed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class CaseScore:
    """A case's verdict: the weighted mean `score`, `passed` when every evaluator passed, and
    each evaluator's `Score` in the order of the specs."""

    score: float
    passed: bool
    scores: tuple[Score, ...]


def case_of_run(record: RunRecord, expected: Any) -> CaseResult:
    """The case as the evaluators see it, from the record of its run."""
    error = None
    if record.status != "succeeded":
        detail = (record.error or {}).get("detail") or f"status {record.status}"
        error = str(detail)
    return CaseResult(
        inputs=record.inputs,
        output=record.output if error is None else None,
        parsed=record.parsed,
        expected=expected,
        latency_ms=record.latency_ms,
        cost=None if record.cost is None else float(record.cost),
        error=error,
    )


def make_validate(renderer: Renderer, tenant_id: uuid.UUID) -> Validate:
    """The schema check of `json_schema` evaluators: in the render pool (a tenant's schema may
    be costly), counted against the tenant's fair share of it."""

    async def validate(schema: dict[str, Any], value: Mapping[str, Any]) -> list[dict[str, str]]:
        with sharing(tenant_id):
            return await renderer.validate_variables(schema, value)

    return validate


def _failure(case: CaseResult) -> str | None:
    if case.error is not None:
        return f"the run failed: {clipped(case.error)}"
    if case.output is None:
        return "the run failed: it produced no output"
    return None


async def _outcome(
    spec: EvaluatorSpec, case: CaseResult, validate: Validate, judge: Judge
) -> Outcome:
    match spec:
        case ExactSpec():
            return scorers.exact(spec, case)
        case ContainsSpec():
            return scorers.contains(spec, case)
        case RegexSpec():
            return await scorers.matches(spec, case)
        case JsonSchemaSpec():
            return await scorers.satisfies_schema(spec, case, validate)
        case JsonFieldSpec():
            return scorers.field_equals(spec, case)
        case NumericSpec():
            return scorers.within_tolerance(spec, case)
        case LatencySpec():
            return scorers.fast_enough(spec, case)
        case CostSpec():
            return scorers.cheap_enough(spec, case)
        case JudgeSpec():
            return await scorers.judged(spec, case, judge)
    raise TypeError(f"no scorer for {type(spec).__name__}")


async def _score(spec: EvaluatorSpec, case: CaseResult, validate: Validate, judge: Judge) -> Score:
    try:
        score, reason = await _outcome(spec, case, validate, judge)
    except Unscorable as unscorable:
        score, reason = 0.0, unscorable.reason
    return Score(score=score, passed=score >= spec.threshold, reason=reason)


def _mean(specs: Sequence[EvaluatorSpec], scores: Sequence[Score]) -> float:
    total = sum(spec.weight for spec in specs)
    return sum(spec.weight * score.score for spec, score in zip(specs, scores, strict=True)) / total


async def score_case(
    specs: Sequence[EvaluatorSpec], case: CaseResult, *, validate: Validate, judge: Judge
) -> CaseScore:
    """Every evaluator's score of `case`, concurrently (judges and schema checks wait on I/O).

    Never fails on the output; an error of the render pool being unavailable (transient, 503)
    propagates, so that the caller retries the case rather than record a false 0.
    """
    if not specs:
        raise ValueError("score_case needs at least one evaluator")
    failure = _failure(case)
    if failure is not None:
        failed = tuple(Score(0.0, False, failure) for _ in specs)
        return CaseScore(score=0.0, passed=False, scores=failed)
    tasks = [asyncio.ensure_future(_score(spec, case, validate, judge)) for spec in specs]
    try:
        scores = tuple(await asyncio.gather(*tasks))
    except BaseException:  # the first error stands; the other evaluators are not waited for
        for task in tasks:
            task.cancel()
        raise
    return CaseScore(
        score=_mean(specs, scores),
        passed=all(score.passed for score in scores),
        scores=scores,
    )
