"""Routes around writing rules: the admins' policy on a prompt, checking a rule before it goes
live, and previewing a draft rule set against the current one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Forbidden
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.rules import policy, preview, tokens, workflow
from promptlogic.rules.policy import RulesPolicy
from promptlogic.rules.schemas import CheckOut, CheckRequest, PreviewRequest
from promptlogic.runs.pipeline import RunServices
from promptlogic.tenancy.auth import (
    PrincipalDep,
    RulesPrincipal,
    RunRulesPrincipal,
    WritePrincipal,
)
from promptlogic.tenancy.principal import Principal
from promptlogic.tenancy.roles import Scope

router = APIRouter(prefix="/v1", tags=["rules"])

PromptName = Annotated[str, Path(pattern=NAME_PATTERN)]


async def _policy_reader(principal: PrincipalDep) -> Principal:
    """Authors read the limits they write under; a rule-set token reaches only its rules."""
    if principal.rule_set is not None or not (
        principal.can(Scope.READ) or principal.can(Scope.RULES)
    ):
        raise Forbidden("Reading a prompt's rules policy needs the `read` or `rules` scope.")
    return principal


@router.get("/prompts/{name}/rules-policy")
async def get_rules_policy(
    name: PromptName,
    principal: Annotated[Principal, Depends(_policy_reader)],
    session: SessionDep,
) -> RulesPolicy:
    """What tenant users may add to this prompt (the defaults if no admin set a policy)."""
    return await policy.get_policy(session, principal.tenant_id, name)


@router.put("/prompts/{name}/rules-policy")
async def put_rules_policy(
    name: PromptName, body: RulesPolicy, principal: WritePrincipal, session: SessionDep
) -> RulesPolicy:
    """Replace the prompt's rules policy; the next run on every worker binds under it."""
    return await policy.set_policy(session, principal.tenant_id, name, body, actor=principal.actor)


@router.post("/rules/check")
async def check_rule(
    body: CheckRequest,
    principal: RulesPrincipal,
    session: SessionDep,
    request: Request,
) -> CheckOut:
    """Judge a rule as enabling it would (limits, the checker prompt), saving nothing."""
    if body.rule is not None:
        await tokens.confine_rule_id(session, principal, body.rule)
    else:
        tokens.confine(principal, prompt=body.prompt, rule_set=body.set)
    verdict = await workflow.check(
        session,
        RunServices.of(request.app.state),
        principal,
        prompt=body.prompt,
        rule_set=body.set,
        text=body.text,
        rule_id=body.rule,
    )
    return CheckOut(**verdict.as_json())


@router.post("/rules/preview")
async def preview_rules(
    body: PreviewRequest,
    principal: RunRulesPrincipal,  # a preview runs the prompt twice
    session: SessionDep,
    request: Request,
) -> dict[str, Any]:
    """Run a prompt on `inputs` under the current rules and under the draft `changes`, and
    return both runs' results side by side (`current`, `draft`)."""
    return await preview.preview(session, RunServices.of(request.app.state), principal, body)
