"""The admins' policy on tenant rules, per prompt: whether rules are allowed, which rule sets
the prompt takes, how many rules and how long, and an optional checker prompt.

The policy is part of the prompt (a column of `prompts`, set by editors and admins), not of a
version: tightening it needs no new version. It is enforced twice: when a rule is saved or
enabled (`rules.checks`), and when a run binds rules (the plan carries the policy, so a rule
saved under a looser policy never reaches a run beyond today's limits).

A rule scoped to a prompt is governed by that prompt's policy. A rule in a set is governed by
the policy of every prompt whose `sets` patterns match the set's name (all of them must
accept it); a set no policy names gets the defaults.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.db.notify import publish
from promptlogic.prompts import service as prompts
from promptlogic.prompts.models import Prompt
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.rules.run_limits import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_RULES,
    RunLimits,
    matches_any,
)
from promptlogic.rules.schemas import MAX_SET_CHARS, MAX_TEXT_CHARS

MAX_RULES_CAP = 1_000
MAX_SET_PATTERNS = 20
MAX_POLICY_TEXT_CHARS = 8_000
_PATTERN_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def set_pattern(value: str) -> str:
    """A rule set's name, where `*` matches any run of characters and `?` any one."""
    if not value or len(value) > MAX_SET_CHARS:
        raise ValueError(f"must be 1 to {MAX_SET_CHARS} characters long")
    if _PATTERN_FORBIDDEN.search(value) or value != value.strip():
        raise ValueError("must be printable, without whitespace at either end")
    return value


class Checker(BaseModel):
    """A managed prompt that judges a rule against the policy text before it goes live.

    It is run with the variables `rule` (the rule's text) and `policy` (the policy text) and
    must answer JSON `{"verdict": "pass" | "fail", "reason": "..."}`."""

    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, Field(pattern=NAME_PATTERN)]
    label: Annotated[str, Field(pattern=NAME_PATTERN, max_length=50)] = "production"


class EvalGate(BaseModel):
    """Test each rule on the promotion gate of `label` (its dataset and evaluators, with the
    rule applied to the version the label holds) before it goes live."""

    model_config = ConfigDict(extra="forbid")

    label: Annotated[str, Field(pattern=NAME_PATTERN, max_length=50)] = "production"


class RulesPolicy(BaseModel):
    """What tenant users may add to a prompt; every field has the default a prompt without a
    policy gets."""

    model_config = ConfigDict(extra="forbid")

    allowed: bool = Field(default=True, strict=True, description="Whether rules reach runs.")
    sets: Annotated[
        list[Annotated[str, AfterValidator(set_pattern)]], Field(max_length=MAX_SET_PATTERNS)
    ] = Field(
        default_factory=list,
        description="Patterns of the rule sets the prompt takes (`account-*`); empty: any set "
        "its binding names. A set matching a pattern is checked against this policy.",
    )
    max_rules: int = Field(
        default=DEFAULT_MAX_RULES,
        strict=True,
        ge=1,
        le=MAX_RULES_CAP,
        description="Rules a scope may hold, drafts included; runs bind at most this many.",
    )
    max_chars: int = Field(
        default=DEFAULT_MAX_CHARS,
        strict=True,
        ge=1,
        le=MAX_TEXT_CHARS,
        description="Characters a rule may have; longer ones never reach a run.",
    )
    policy_text: str = Field(
        default="",
        max_length=MAX_POLICY_TEXT_CHARS,
        description="The admins' policy in plain language, which the checker judges rules by.",
    )
    checker: Checker | None = Field(default=None, description="No checker: limits only.")
    eval_gate: EvalGate | None = Field(
        default=None, description="Also pass the label's promotion gate with the rule applied."
    )

    def run_limits(self) -> RunLimits:
        return RunLimits(self.allowed, tuple(self.sets), self.max_rules, self.max_chars)


DEFAULT_POLICY = RulesPolicy()


def policy_of(stored: dict[str, Any] | None) -> RulesPolicy:
    """A prompt's policy from its column; None (never set) is the defaults."""
    return DEFAULT_POLICY if stored is None else RulesPolicy.model_validate(stored)


@dataclass(frozen=True, slots=True)
class Governing:
    """A policy that applies to a rule, and the prompt it belongs to (None: the defaults)."""

    prompt: str | None
    policy: RulesPolicy


async def governing(
    session: AsyncSession, tenant_id: uuid.UUID, *, prompt: str | None, rule_set: str | None
) -> list[Governing]:
    """The policies a rule of this scope must satisfy (at least one: the defaults)."""
    if prompt is not None:
        stored = await session.scalar(
            Prompt.for_tenant(tenant_id, Prompt.rules_policy).where(Prompt.name == prompt)
        )
        return [Governing(prompt, policy_of(stored))]
    rows = await session.execute(
        Prompt.for_tenant(tenant_id, Prompt.name, Prompt.rules_policy)
        .where(Prompt.rules_policy.is_not(None), Prompt.archived.is_(False))
        .order_by(Prompt.name)
    )
    found = [
        Governing(row.name, policy)
        for row in rows
        if (policy := policy_of(row.rules_policy)).sets and matches_any(str(rule_set), policy.sets)
    ]
    return found or [Governing(None, DEFAULT_POLICY)]


async def get_policy(session: AsyncSession, tenant_id: uuid.UUID, prompt: str) -> RulesPolicy:
    """A prompt's policy (404 for a prompt the tenant does not have)."""
    found = await prompts.get_prompt(session, tenant_id=tenant_id, name=prompt)
    return policy_of(found.rules_policy)


async def set_policy(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    prompt: str,
    policy: RulesPolicy,
    *,
    actor: Actor,
) -> RulesPolicy:
    """Replace a prompt's policy; audited, and announced as a change of the prompt so every
    worker's render plans (which carry the run limits) are dropped."""
    found = await prompts.lock_prompt(session, tenant_id=tenant_id, name=prompt)
    before = policy_of(found.rules_policy).model_dump(mode="json")
    after = policy.model_dump(mode="json")
    if found.rules_policy is not None and before == after:
        return policy
    found.rules_policy = after
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="prompt.rules_policy",
        target_type="prompt",
        target_id=prompt,
        before=before,
        after=after,
    )
    await publish(session, prompts.PROMPT_TOPIC, tenant_id=str(tenant_id), name=prompt)
    return policy
