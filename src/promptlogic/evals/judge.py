"""LLM-as-judge: a managed prompt (versioned and labelled like any other) grades an output.

The judge prompt runs through the normal run path, so it is rendered, limited, costed and
recorded like any run (tagged `{"eval_judge": "1"}` in its metadata). It is given three
variables: `inputs` (the case's variables, an object), `output` (the text answered) and
`expected` (the case's expectation: text, JSON or null). Its templates usually show them with
`tojson`, and its version needs an `input_schema` that allows them: without one, every variable
must be a string. It answers `{"score": 0..1, "reason": "..."}`, best enforced with that as
its response format.

A judge that cannot run or answers anything else scores 0 with a reason saying so: a grade
nobody gave must not pass a case.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

from promptlogic.errors import Problem
from promptlogic.evals.scorers import CaseResult, Judge
from promptlogic.evals.specs import JudgeSpec
from promptlogic.evals.values import clipped, shown
from promptlogic.runs.pipeline import RunRequest, RunServices, execute_run
from promptlogic.runs.service import RunRecord
from promptlogic.tenancy.principal import Principal
from promptlogic.usage.limiter import UsageLimited

MAX_JUDGE_REASON_CHARS = 1_000
JUDGE_METADATA_KEY = "eval_judge"
ANSWER_SHAPE = '{"score": 0..1, "reason": "..."}'


class BadAnswer(ValueError):
    """The judge answered, but not a score and a reason."""


def judge_request(spec: JudgeSpec, case: CaseResult) -> RunRequest:
    """The run of the judge prompt for one case."""
    return RunRequest(
        name=spec.prompt,
        selector=spec.selector,
        variables={"inputs": case.inputs, "output": case.output, "expected": case.expected},
        end_user=None,
        metadata={JUDGE_METADATA_KEY: "1"},
    )


def _answer_of(record: RunRecord) -> Any:
    """The judge's answer: as parsed by its response format, else its text parsed as JSON,
    else its text (to quote in the reason)."""
    if record.parsed is not None:
        return record.parsed
    try:
        return json.loads(record.output or "")
    except (ValueError, RecursionError):
        return record.output


def _is_fraction(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def grade_of(answer: Any, prompt: str) -> tuple[float, str]:
    """The score and reason in a judge's answer; `BadAnswer` when it is not one."""
    if isinstance(answer, dict):
        score, reason = answer.get("score"), answer.get("reason")
        if _is_fraction(score) and isinstance(reason, str):
            return float(score), reason.strip()[:MAX_JUDGE_REASON_CHARS]
    raise BadAnswer(
        f"the judge `{prompt}` did not answer {ANSWER_SHAPE}: it answered {shown(answer)}"
    )


def make_judge(services: RunServices, principal: Principal) -> Judge:
    """The judge of `score_case`: each call is one run of the spec's judge prompt, made as
    `principal` (whose tenant owns the prompt and pays for the call). A failed run or a
    malformed answer is a 0 with the reason; only a usage limit is raised (`UsageLimited`),
    for the caller to wait out rather than record a false 0."""

    async def judge(spec: JudgeSpec, case: CaseResult) -> tuple[float, str]:
        try:
            record = await execute_run(services, principal, judge_request(spec, case))
        except UsageLimited:
            raise
        except Problem as problem:
            return 0.0, f"the judge `{spec.prompt}` could not run: {clipped(problem.detail)}"
        try:
            return grade_of(_answer_of(record), spec.prompt)
        except BadAnswer as bad:
            return 0.0, str(bad)

    return judge
