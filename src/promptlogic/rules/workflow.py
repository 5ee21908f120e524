"""Saving a rule with its checks: what the API and the web UI both call.

The order matters for the database: the reads the checks need are made, the read transaction
is ended (`commit`, nothing written yet) before any checker prompt runs, so no pooled
connection waits on a model; the save then locks the rule and refuses (409) if it changed
while it was being judged.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import commit
from promptlogic.errors import InvalidInput
from promptlogic.rules import checks, service
from promptlogic.rules.checks import Candidate, Verdict
from promptlogic.rules.models import Rule
from promptlogic.rules.schemas import RuleCreate, RulePatch
from promptlogic.runs.pipeline import RunServices
from promptlogic.tenancy.principal import Principal


async def _judge(
    session: AsyncSession, services: RunServices, principal: Principal, candidate: Candidate
) -> Verdict:
    policies = await checks.refuse_unfit(session, candidate)
    await commit(session)  # end the read transaction before the checkers' model calls
    return await checks.judge(services, principal, candidate, policies)


async def create(
    session: AsyncSession, services: RunServices, principal: Principal, body: RuleCreate
) -> Rule:
    """A new rule: refused (422) if the policy cannot take it; live only if it passes."""
    service.check_scope(body.prompt, body.set)
    candidate = Candidate(principal.tenant_id, body.prompt, body.set, body.text)
    if body.prompt is not None:  # 404 before any check names the prompt
        await service.prompts.get_prompt(session, tenant_id=principal.tenant_id, name=body.prompt)
    if body.enabled:
        verdict: Verdict | None = await _judge(session, services, principal, candidate)
    else:
        await checks.refuse_unfit(session, candidate)
        verdict = None
    return await service.create_rule(
        session,
        tenant_id=principal.tenant_id,
        prompt=body.prompt,
        rule_set=body.set,
        text=body.text,
        enabled=body.enabled,
        priority=body.priority,
        actor=principal.actor,
        verdict=verdict,
    )


async def update(
    session: AsyncSession,
    services: RunServices,
    principal: Principal,
    rule_id: uuid.UUID,
    body: RulePatch,
    expected_revision: int | None,
) -> Rule:
    """A change to a rule. New text is held to the policy (422); a change that leaves the
    rule enabled is judged again, and the rule stays live only if it passes."""
    current = await service.get_rule(session, tenant_id=principal.tenant_id, rule_id=rule_id)
    service.check_revision(current, expected_revision)
    text = current.text if body.text is None else body.text
    enabled = current.enabled if body.enabled is None else body.enabled
    candidate = Candidate(principal.tenant_id, current.prompt, current.rule_set, text, rule_id)
    verdict, judged = None, None
    if enabled and (text, enabled) != (current.text, current.enabled):
        judged = current.revision
        verdict = await _judge(session, services, principal, candidate)
    elif text != current.text:
        await checks.refuse_unfit(session, candidate)
    return await service.update_rule(
        session,
        tenant_id=principal.tenant_id,
        rule_id=rule_id,
        actor=principal.actor,
        expected_revision=expected_revision,
        text=body.text,
        enabled=body.enabled,
        priority=body.priority,
        verdict=verdict,
        judged_revision=judged,
    )


async def check(
    session: AsyncSession,
    services: RunServices,
    principal: Principal,
    *,
    prompt: str | None = None,
    rule_set: str | None = None,
    text: str | None = None,
    rule_id: uuid.UUID | None = None,
) -> Verdict:
    """Judge a rule without saving anything (what the author sees before enabling): a saved
    rule by id (with its text, or `text` in its place), or a text for a scope."""
    if rule_id is not None and (prompt is not None or rule_set is not None):
        raise InvalidInput.field("body.rule", "give a saved `rule` or a scope, not both")
    if rule_id is not None:
        rule = await service.get_rule(session, tenant_id=principal.tenant_id, rule_id=rule_id)
        prompt, rule_set, text = rule.prompt, rule.rule_set, text or rule.text
    else:
        service.check_scope(prompt, rule_set)
        if prompt is not None:
            await service.prompts.get_prompt(session, tenant_id=principal.tenant_id, name=prompt)
    if text is None:
        raise InvalidInput.field("body.text", "give the rule's text, or a saved `rule`")
    candidate = Candidate(principal.tenant_id, prompt, rule_set, text, rule_id)
    return await _judge(session, services, principal, candidate)
