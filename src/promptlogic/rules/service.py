"""Tenant rules: create, read, edit with optimistic concurrency, reorder. No HTTP; callers commit.

A rule belongs to one scope: a prompt (by name) or a named rule set that several prompts bind.
Every change makes a new revision (kept whole in `rule_revisions`), is audited, and is
announced on RULES_TOPIC in the same transaction, so whatever caches a scope's rules drops it
when the change commits. The audit keeps ids, scopes and revisions; the text is in the history.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.db.notify import publish
from promptlogic.errors import Conflict, InvalidInput, NotFound
from promptlogic.pagination import decode_cursor, invalid_cursor, paginate
from promptlogic.prompts import service as prompts
from promptlogic.rules.models import Rule, RuleRevision
from promptlogic.rules.schemas import MAX_PRIORITY, scope_errors

if TYPE_CHECKING:  # the checks run prompts, whose bindings read rules through this module
    from promptlogic.rules.checks import Verdict

RULES_TOPIC = "rules"
"""Payload: `tenant_id`, and the scope whose rules changed: `prompt` or `set` (its name)."""

LIVE = "enabled"  # the status of a rule that reaches runs


def _apply_status(rule: Rule, enabled: bool, verdict: Verdict | None) -> None:
    """Set the rule's enabled flag, status and reason. A rule to be enabled goes live only
    with a passing verdict of the checks (`rules.checks.judge`); a failing one leaves it a
    draft, `rejected`, with the reasons."""
    rule.check_reason = None
    if not enabled:
        rule.enabled = False
        rule.status = "disabled" if rule.status in (LIVE, "disabled") else "draft"
    elif verdict is None:
        raise RuntimeError("enabling a rule needs the verdict of its checks")
    elif verdict.passed:
        rule.enabled, rule.status = True, LIVE
    else:
        rule.enabled, rule.status, rule.check_reason = False, "rejected", verdict.reason


def _scope(prompt: str | None, rule_set: str | None) -> dict[str, str]:
    """The scope as the API and the notifications name it."""
    return {"set": rule_set} if rule_set is not None else {"prompt": str(prompt)}


def _scope_of(rule: Rule) -> dict[str, str]:
    return _scope(rule.prompt, rule.rule_set)


def check_scope(prompt: str | None, rule_set: str | None) -> None:
    errors = scope_errors(prompt, rule_set)
    if errors:
        raise InvalidInput(f"body.prompt, body.set: {errors[0]['message']}", errors=errors)


def _where_scope(prompt: str | None, rule_set: str | None) -> Any:
    if rule_set is not None:
        return Rule.rule_set == rule_set
    return Rule.prompt == prompt


def _scope_name(prompt: str | None, rule_set: str | None) -> str:
    return f"set `{rule_set}`" if rule_set is not None else f"prompt `{prompt}`"


def _summary(rule: Rule) -> dict[str, Any]:
    return {
        **_scope_of(rule),
        "revision": rule.revision,
        "enabled": rule.enabled,
        "status": rule.status,
        "priority": rule.priority,
        "chars": len(rule.text),
    }


def _snapshot(rule: Rule) -> RuleRevision:
    return RuleRevision(
        tenant_id=rule.tenant_id,
        rule_id=rule.id,
        revision=rule.revision,
        text=rule.text,
        enabled=rule.enabled,
        priority=rule.priority,
        status=rule.status,
        check_reason=rule.check_reason,
        author=rule.author,
    )


async def _now(session: AsyncSession) -> datetime:
    """The transaction's time, as `now()` in a column default."""
    return await session.scalar(select(func.now()))


async def _announce(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    scope: dict[str, str],
    actor: Actor,
    action: str,
    target_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    target_type: str = "rule",
) -> None:
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
    )
    await publish(session, RULES_TOPIC, tenant_id=str(tenant_id), **scope)


async def find_rule(
    session: AsyncSession, *, tenant_id: uuid.UUID, rule_id: uuid.UUID, lock: bool = False
) -> Rule | None:
    statement = Rule.for_tenant(tenant_id).where(Rule.id == rule_id)
    if lock:
        statement = statement.with_for_update()
    return await session.scalar(statement.execution_options(populate_existing=True))


async def get_rule(
    session: AsyncSession, *, tenant_id: uuid.UUID, rule_id: uuid.UUID, lock: bool = False
) -> Rule:
    """The tenant's rule, or 404 (another tenant's rule is just as unknown)."""
    rule = await find_rule(session, tenant_id=tenant_id, rule_id=rule_id, lock=lock)
    if rule is None:
        raise NotFound(f"No rule `{rule_id}`.")
    return rule


async def _next_priority(
    session: AsyncSession, tenant_id: uuid.UUID, prompt: str | None, rule_set: str | None
) -> int:
    """One more than the scope's last rule, so a new rule comes last; 1 in an empty scope."""
    highest = await session.scalar(
        Rule.for_tenant(tenant_id, func.max(Rule.priority)).where(_where_scope(prompt, rule_set))
    )
    return 1 if highest is None else min(highest + 1, MAX_PRIORITY)


async def create_rule(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    prompt: str | None,
    rule_set: str | None,
    text: str,
    enabled: bool,
    priority: int | None,
    actor: Actor,
    verdict: Verdict | None = None,
) -> Rule:
    """Save a rule at revision 1 in a prompt's scope (the prompt must exist: 404) or a set's;
    enabled only with a passing `verdict`."""
    check_scope(prompt, rule_set)
    if prompt is not None:
        await prompts.get_prompt(session, tenant_id=tenant_id, name=prompt)
    if priority is None:
        priority = await _next_priority(session, tenant_id, prompt, rule_set)
    rule = Rule(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        prompt=prompt,
        rule_set=rule_set,
        text=text,
        status="draft",
        priority=priority,
        revision=1,
        author=actor.name,
    )
    _apply_status(rule, enabled, verdict)
    session.add(rule)
    await session.flush()
    await session.refresh(rule, ["created_at", "updated_at"])
    session.add(_snapshot(rule))
    await _announce(
        session,
        tenant_id,
        _scope_of(rule),
        actor,
        "rule.create",
        str(rule.id),
        after=_summary(rule),
    )
    return rule


async def list_rules(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    limit: int,
    cursor: str | None = None,
    prompt: str | None = None,
    rule_set: str | None = None,
) -> tuple[list[Rule], str | None]:
    """A page of the tenant's rules in the order they apply: by priority, then age."""
    statement = (
        Rule.for_tenant(tenant_id)
        .order_by(Rule.priority, Rule.created_at, Rule.id)
        .limit(limit + 1)
    )
    if prompt is not None:
        statement = statement.where(Rule.prompt == prompt)
    if rule_set is not None:
        statement = statement.where(Rule.rule_set == rule_set)
    if cursor is not None:
        priority, created_at, rule_id = decode_cursor(cursor, int, str, str)
        try:
            after = (priority, datetime.fromisoformat(created_at), uuid.UUID(rule_id))
        except ValueError:
            raise invalid_cursor() from None
        statement = statement.where(tuple_(Rule.priority, Rule.created_at, Rule.id) > after)
    rules = list((await session.scalars(statement)).all())
    return paginate(
        rules, limit, lambda rule: (rule.priority, rule.created_at.isoformat(), str(rule.id))
    )


def check_revision(rule: Rule, expected_revision: int | None) -> None:
    if expected_revision is not None and rule.revision != expected_revision:
        raise Conflict(
            f"Rule `{rule.id}` is at revision {rule.revision}, but you expected revision "
            f"{expected_revision}. Reload it and retry."
        )


async def update_rule(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    rule_id: uuid.UUID,
    actor: Actor,
    expected_revision: int | None = None,
    text: str | None = None,
    enabled: bool | None = None,
    priority: int | None = None,
    verdict: Verdict | None = None,
    judged_revision: int | None = None,
) -> Rule:
    """Change a rule's text, enabled flag or priority: a new revision, or 409 when it is not at
    `expected_revision`. Values it already has change nothing (no new revision). A change
    that leaves the rule enabled needs a passing `verdict` on the revision it judged
    (`judged_revision`: 409 if the rule changed while it was being checked)."""
    rule = await get_rule(session, tenant_id=tenant_id, rule_id=rule_id, lock=True)
    check_revision(rule, expected_revision)
    if judged_revision is not None and rule.revision != judged_revision:
        raise Conflict(f"Rule `{rule.id}` changed while it was being checked. Reload it and retry.")
    new_text = rule.text if text is None else text
    new_enabled = rule.enabled if enabled is None else enabled
    new_priority = rule.priority if priority is None else priority
    if (new_text, new_enabled, new_priority) == (rule.text, rule.enabled, rule.priority):
        return rule
    before = _summary(rule)
    if (new_text, new_enabled) != (rule.text, rule.enabled):  # the checks judge these again
        _apply_status(rule, new_enabled, verdict)
    rule.text, rule.priority = new_text, new_priority
    rule.revision += 1
    rule.author = actor.name
    rule.updated_at = await _now(session)
    session.add(_snapshot(rule))
    await session.flush()
    await _announce(
        session,
        tenant_id,
        _scope_of(rule),
        actor,
        "rule.update",
        str(rule.id),
        before=before,
        after=_summary(rule),
    )
    return rule


async def delete_rule(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    rule_id: uuid.UUID,
    actor: Actor,
    expected_revision: int | None = None,
) -> None:
    """Delete a rule and its history: 404 if there is none, 409 if not at `expected_revision`."""
    rule = await get_rule(session, tenant_id=tenant_id, rule_id=rule_id, lock=True)
    check_revision(rule, expected_revision)
    before, scope = _summary(rule), _scope_of(rule)
    await session.delete(rule)  # its revisions go with it (ON DELETE CASCADE)
    await session.flush()
    await _announce(session, tenant_id, scope, actor, "rule.delete", str(rule_id), before=before)


async def rule_history(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    rule_id: uuid.UUID,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[RuleRevision], str | None]:
    """A page of a rule's revisions, newest first, each whole as it was saved."""
    await get_rule(session, tenant_id=tenant_id, rule_id=rule_id)
    statement = (
        RuleRevision.for_tenant(tenant_id)
        .where(RuleRevision.rule_id == rule_id)
        .order_by(RuleRevision.revision.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        (before,) = decode_cursor(cursor, int)
        statement = statement.where(RuleRevision.revision < before)
    revisions = list((await session.scalars(statement)).all())
    return paginate(revisions, limit, lambda revision: (revision.revision,))


def _listed(ids: list[uuid.UUID]) -> str:
    return ", ".join(f"`{rule_id}`" for rule_id in ids)


async def reorder_rules(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    prompt: str | None,
    rule_set: str | None,
    ids: list[uuid.UUID],
    actor: Actor,
) -> list[Rule]:
    """Give a scope's rules priorities 1, 2, 3… in the order of `ids`, which must name each of
    them exactly once (422 otherwise, nothing changed). A rule whose priority changes gets a
    new revision."""
    check_scope(prompt, rule_set)
    repeated = [rule_id for rule_id, seen in Counter(ids).items() if seen > 1]
    if repeated:
        raise InvalidInput.field("body.ids", f"names {_listed(repeated)} more than once")
    # Locked in id order, as every reorder of the scope does, so two reorders cannot deadlock.
    rows = await session.scalars(
        Rule.for_tenant(tenant_id)
        .where(_where_scope(prompt, rule_set))
        .order_by(Rule.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    by_id = {rule.id: rule for rule in rows}
    wanted = set(ids)
    missing = [rule_id for rule_id in by_id if rule_id not in wanted]
    unknown = [rule_id for rule_id in ids if rule_id not in by_id]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"leaves out {_listed(missing)}")
        if unknown:
            problems.append(f"names {_listed(unknown)}, not rules of this scope")
        raise InvalidInput.field(
            "body.ids",
            f"must list every rule of the {_scope_name(prompt, rule_set)} exactly once; it "
            + " and ".join(problems),
        )
    ordered = [by_id[rule_id] for rule_id in ids]
    moved = [
        (rule, position)
        for position, rule in enumerate(ordered, start=1)
        if rule.priority != position
    ]
    if not moved:
        return ordered
    before = {str(rule.id): rule.priority for rule in ordered}
    now = await _now(session)
    for rule, position in moved:
        rule.priority = position
        rule.revision += 1
        rule.author = actor.name
        rule.updated_at = now
        session.add(_snapshot(rule))
    await session.flush()
    scope = _scope(prompt, rule_set)
    await _announce(
        session,
        tenant_id,
        scope,
        actor,
        "rule.reorder",
        f"set:{rule_set}" if rule_set is not None else f"prompt:{prompt}",
        before={**scope, "priorities": before},
        after={**scope, "priorities": {str(rule.id): rule.priority for rule in ordered}},
        target_type="rule_scope",
    )
    return ordered


async def rules_for(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    prompt: str | None,
    set: str | None,  # the binding's own word for it
) -> list[dict[str, Any]]:
    """The live rules of a scope, in the order they apply, as plain data for a render.

    With `set`, the rules of that set; else the rules scoped to `prompt`; neither, none.
    Only rules whose status is `enabled` (enabled and passed the checks) are returned.
    """
    if set is None and prompt is None:
        return []
    rows = await session.execute(
        Rule.for_tenant(tenant_id, Rule.id, Rule.text, Rule.priority, Rule.revision)
        .where(_where_scope(prompt, set), Rule.enabled.is_(True), Rule.status == LIVE)
        .order_by(Rule.priority, Rule.created_at, Rule.id)
    )
    return [
        {"id": str(row.id), "text": row.text, "priority": row.priority, "revision": row.revision}
        for row in rows
    ]
