"""Try a draft rule set before enabling it: the same prompt, the same inputs, run twice (under
the rules live now, and under the live rules with the author's changes) so the author sees
what the change does. Both are ordinary runs through the run path, recorded and counted, with
`{"preview": "current" | "draft"}` in their metadata.

The draft never touches the rules cache or the database: the draft run's binder reads rules
through `DraftRules`, which lays the changes over the live rules of one scope.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import commit
from promptlogic.errors import InvalidInput
from promptlogic.prompts.render import plan_for, selector_for
from promptlogic.rules import checks
from promptlogic.rules.cache import RuleSource, Scope
from promptlogic.rules.models import Rule
from promptlogic.rules.schemas import MAX_PRIORITY, PreviewRequest, RuleChange
from promptlogic.runs.pipeline import RunRequest, RunServices, execute_run, result_of
from promptlogic.tenancy.principal import Principal


class DraftRules:
    """The live rules of every scope, but `scope`'s with the draft laid over them."""

    def __init__(self, live: RuleSource, scope: Scope, draft: list[dict[str, Any]]) -> None:
        self._live = live
        self._scope = scope
        self._draft = draft

    async def get(self, tenant_id: uuid.UUID, scope: Scope) -> tuple[dict[str, Any], ...]:
        rules = await self._live.get(tenant_id, scope)
        if scope != self._scope:
            return rules
        return overlay(rules, self._draft)


def overlay(
    live: tuple[dict[str, Any], ...], draft: list[dict[str, Any]]
) -> tuple[dict[str, Any], ...]:
    """`live` with each draft entry in place of the rule of the same id (or added), and the
    entries marked `"removed"` left out; in the order rules apply."""
    replaced = {entry["id"] for entry in draft}
    kept = [rule for rule in live if rule["id"] not in replaced]
    added = [entry for entry in draft if not entry.get("removed")]
    ordered = sorted(
        [(rule, index) for index, rule in enumerate(kept + added)],
        key=lambda pair: (pair[0]["priority"], pair[1]),
    )
    return tuple(
        {key: rule[key] for key in ("id", "text", "priority", "revision")} for rule, _ in ordered
    )


def with_draft(services: RunServices, scope: Scope, draft: list[dict[str, Any]]) -> RunServices:
    """The same services, whose runs bind `scope`'s rules with the draft laid over them."""
    live = services.binder.rules
    if live is None:
        raise RuntimeError("drafting rules needs the rules cache")
    rules = DraftRules(live, scope, draft)
    return dataclasses.replace(services, binder=dataclasses.replace(services.binder, rules=rules))


def scope_of(prompt: str, rule_set: str | None) -> Scope:
    """The scope draft changes are to: the set, else the prompt's own rules."""
    return ("set", rule_set) if rule_set is not None else ("prompt", prompt)


def needs_scope(
    bindings: tuple[dict[str, Any], ...], prompt: str, rule_set: str | None, where: str = "body"
) -> None:
    """422 unless the version binds rules the way the preview names them: a version whose
    binding names a set needs `set`, one that takes its prompt's own rules needs none."""
    rules = [binding for binding in bindings if binding.get("source") == "rules"]
    if not rules:
        raise InvalidInput.field(
            f"{where}.prompt", f"this version of `{prompt}` has no `rules` binding to preview"
        )
    by_set = [binding for binding in rules if binding.get("set")]
    if rule_set is None and len(by_set) == len(rules):
        raise InvalidInput.field(
            f"{where}.set",
            f"`{prompt}` takes its rules from the set `{by_set[0]['set']}`: name the set",
        )
    if rule_set is not None and not by_set:
        raise InvalidInput.field(
            f"{where}.set", f"`{prompt}` takes its own rules, not a set's: leave `set` out"
        )


async def draft_entries(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    prompt: str,
    rule_set: str | None,
    changes: Sequence[RuleChange],
    field: str = "body.changes",
) -> list[dict[str, Any]]:
    """The changes to the rules of `rule_set` (else of `prompt`) as rule entries for
    `DraftRules`, with saved rules read (they must be of the scope) and every text held to
    the scope's policy (422 naming the change)."""
    ids = [change.rule for change in changes if change.rule is not None]
    saved: dict[uuid.UUID, Rule] = {}
    if ids:
        rows = await session.scalars(Rule.for_tenant(tenant_id).where(Rule.id.in_(ids)))
        saved = {rule.id: rule for rule in rows}
    scope_prompt = None if rule_set is not None else prompt
    entries = []
    next_priority = MAX_PRIORITY
    for index, change in enumerate(changes):
        where = f"{field}[{index}]"
        entry = _entry(change, saved, scope_prompt, rule_set, where, index)
        if change.text is not None:
            candidate = checks.Candidate(
                tenant_id, scope_prompt, rule_set, change.text, change.rule
            )
            try:
                await checks.refuse_unfit(session, candidate)
            except InvalidInput as refused:
                message = refused.errors[0]["message"] if refused.errors else refused.detail
                raise InvalidInput.field(f"{where}.text", message) from None
        if entry["priority"] is None:
            entry["priority"] = next_priority
        entries.append(entry)
    return entries


def _entry(
    change: RuleChange,
    saved: dict[uuid.UUID, Rule],
    prompt: str | None,
    rule_set: str | None,
    field: str,
    index: int,
) -> dict[str, Any]:
    if change.rule is None:
        if change.text is None:
            raise InvalidInput.field(field, "give a new rule's `text`, or a saved `rule`")
        return {
            "id": f"draft-{index + 1}",
            "text": change.text,
            "priority": change.priority,
            "revision": 0,
        }
    rule = saved.get(change.rule)
    if rule is None or (rule.prompt, rule.rule_set) != (prompt, rule_set):
        raise InvalidInput.field(f"{field}.rule", f"no rule `{change.rule}` in this scope")
    return {
        "id": str(rule.id),
        "text": rule.text if change.text is None else change.text,
        "priority": rule.priority if change.priority is None else change.priority,
        "revision": rule.revision,
        "removed": change.enabled is False,
    }


async def preview(
    session: AsyncSession,
    services: RunServices,
    principal: Principal,
    body: PreviewRequest,
) -> dict[str, Any]:
    """Run the prompt under the current rules and under the draft, side by side."""
    selector = selector_for(body.label, body.version)
    plan = await plan_for(
        services.sessions,
        services.plans,
        services.renderer,
        principal.tenant_id,
        body.prompt,
        selector,
    )
    needs_scope(plan.bindings, body.prompt, body.set)
    draft = await draft_entries(
        session, principal.tenant_id, prompt=body.prompt, rule_set=body.set, changes=body.changes
    )
    await commit(session)  # end the read transaction before two model calls
    drafted = with_draft(services, scope_of(body.prompt, body.set), draft)

    split_key = f"preview-{uuid.uuid4().hex}"  # both runs take the same arm of a split label

    def request(which: str) -> RunRequest:
        return RunRequest(
            name=body.prompt,
            selector=selector,
            variables=body.inputs,
            end_user=split_key,
            metadata={"preview": which},
        )

    current, changed = await asyncio.gather(
        execute_run(services, principal, request("current")),
        execute_run(drafted, principal, request("draft")),
    )
    return {"current": result_of(current), "draft": result_of(changed)}
