"""The checks a rule passes before it goes live.

Two stages, so that bad input is refused at once and only an acceptable rule costs a model call:

- `refuse_unfit` (on every save, drafts too): the governing policies allow rules in this
  scope, the text is within their length, and the scope has room (422 naming the field).
- `judge` (when a rule is to be enabled): the limits again (a draft may predate a tighter
  policy), then each governing policy's checker prompt, run through the normal run path and
  recorded like any run, then, for a policy with an `eval_gate`, an eval of the label's
  promotion gate with the rule applied (`evals.rule_gate`). A rule that fails stays a draft
  (`rejected`) with the reasons the author reads.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.errors import InvalidInput, Problem
from promptlogic.rules.models import Rule
from promptlogic.rules.policy import Governing, governing
from promptlogic.runs.pipeline import RunRequest, RunServices, execute_run
from promptlogic.tenancy.principal import Principal

VERDICTS = {"pass": True, "fail": False}
MAX_REASON_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class Candidate:
    """A rule as it would be saved: its scope and text (`rule_id` None for a new one)."""

    tenant_id: uuid.UUID
    prompt: str | None
    rule_set: str | None
    text: str
    rule_id: uuid.UUID | None = None

    @property
    def scope_field(self) -> str:
        return "body.set" if self.rule_set is not None else "body.prompt"

    @property
    def scope_name(self) -> str:
        return f"set `{self.rule_set}`" if self.rule_set is not None else f"prompt `{self.prompt}`"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome: `check` is `limits`, `checker` or a gate's name."""

    check: str
    passed: bool
    reason: str | None = None
    prompt: str | None = None  # the policy's prompt, or the checker prompt that judged
    run_id: str | None = None  # the checker's run, to look it up

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "passed": self.passed,
            "reason": self.reason,
            "prompt": self.prompt,
            "run_id": self.run_id,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def reason(self) -> str | None:
        """What the author reads on a rejected rule: every failed check's reason."""
        failed = [r.reason or f"the {r.check} check failed" for r in self.results if not r.passed]
        return "; ".join(failed) or None

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "checks": [result.as_json() for result in self.results],
        }


def _where(candidate: Candidate) -> Any:
    if candidate.rule_set is not None:
        return Rule.rule_set == candidate.rule_set
    return Rule.prompt == candidate.prompt


def _limit_failures(candidate: Candidate, policies: list[Governing]) -> list[CheckResult]:
    failures = []
    for governed in policies:
        owner = f"prompt `{governed.prompt}`" if governed.prompt else "the default policy"
        if not governed.policy.allowed:
            reason = f"{owner} does not allow rules"
        elif len(candidate.text) > governed.policy.max_chars:
            reason = (
                f"the rule is {len(candidate.text)} characters long; {owner} allows "
                f"{governed.policy.max_chars}"
            )
        else:
            continue
        failures.append(CheckResult("limits", False, reason, governed.prompt))
    return failures


async def refuse_unfit(session: AsyncSession, candidate: Candidate) -> list[Governing]:
    """The governing policies; 422 (nothing saved) when they refuse the rule outright or the
    scope is full. Only a new rule takes room."""
    policies = await governing(
        session, candidate.tenant_id, prompt=candidate.prompt, rule_set=candidate.rule_set
    )
    failures = _limit_failures(candidate, policies)
    if failures:
        refused = failures[0]
        text_field = "body.text" if "characters" in (refused.reason or "") else None
        raise InvalidInput.field(text_field or candidate.scope_field, str(refused.reason))
    if candidate.rule_id is None:
        room = min(governed.policy.max_rules for governed in policies)
        held = await session.scalar(
            Rule.for_tenant(candidate.tenant_id, func.count()).where(_where(candidate))
        )
        if (held or 0) >= room:
            raise InvalidInput.field(
                candidate.scope_field,
                f"the {candidate.scope_name} already has {held} rules, the most its policy "
                f"allows ({room}); delete one first",
            )
    return policies


def _verdict_of(parsed: Any, checker: str) -> tuple[bool, str]:
    if not isinstance(parsed, dict) or parsed.get("verdict") not in VERDICTS:
        raise ValueError(
            f'the checker `{checker}` did not answer {{"verdict": "pass" | "fail", "reason"}}'
        )
    reason = str(parsed.get("reason") or "").strip()[:MAX_REASON_CHARS]
    return VERDICTS[parsed["verdict"]], reason


async def _run_checker(
    services: RunServices, principal: Principal, candidate: Candidate, governed: Governing
) -> CheckResult:
    """Ask the policy's checker prompt; a checker that cannot answer fails the check (closed)."""
    checker = governed.policy.checker
    assert checker is not None
    request = RunRequest(
        name=checker.prompt,
        selector=("label", checker.label),
        variables={"rule": candidate.text, "policy": governed.policy.policy_text},
        end_user=None,
        metadata={"rules_check": candidate.rule_set or candidate.prompt or ""},
    )
    run_id = None
    try:
        record = await execute_run(services, principal, request)
        run_id = str(record.id)
        parsed = record.parsed
        if parsed is None and record.output:
            parsed = json.loads(record.output)
        passed, reason = _verdict_of(parsed, checker.prompt)
    except Problem as problem:
        passed, reason = False, f"the checker `{checker.prompt}` could not run: {problem.detail}"
    except ValueError as invalid:
        passed, reason = False, str(invalid)
    if not passed and not reason:
        reason = f"the checker `{checker.prompt}` rejected the rule"
    return CheckResult("checker", passed, reason or None, checker.prompt, run_id)


async def judge(
    services: RunServices,
    principal: Principal,
    candidate: Candidate,
    policies: list[Governing],
) -> Verdict:
    """Every check of a rule that is to go live; the checkers run only on a rule within the
    limits, one after another (each is a model call the tenant pays for)."""
    failures = _limit_failures(candidate, policies)
    if failures:
        return Verdict(tuple(failures))
    results = [CheckResult("limits", True)]
    for governed in policies:
        if governed.policy.checker is not None:
            results.append(await _run_checker(services, principal, candidate, governed))
    if all(result.passed for result in results):
        # Evals build on rules (an eval may run under draft rules): imported when needed.
        from promptlogic.evals.rule_gate import eval_gates

        results.extend(await eval_gates(services, principal, candidate, policies))
    return Verdict(tuple(results))
