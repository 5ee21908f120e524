"""Routes of tenant rules: thin wrappers over the service.

A rule's ETag is its revision (`"3"`). If-Match makes a PATCH or DELETE conditional on it (409
when stale, as for context records). Writing needs the `rules` scope (`write` and `admin`
imply it); reading needs `read`, or `rules` for the rules alone.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Forbidden
from promptlogic.etags import etag_of, number_in
from promptlogic.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.rules import service, tokens, workflow
from promptlogic.rules.models import Rule, RuleRevision
from promptlogic.rules.schemas import (
    ReorderRequest,
    RevisionOut,
    RuleCreate,
    RuleList,
    RuleOut,
    RulePatch,
    SetName,
)
from promptlogic.runs.pipeline import RunServices
from promptlogic.tenancy.auth import PrincipalDep, RulesPrincipal
from promptlogic.tenancy.principal import Principal
from promptlogic.tenancy.roles import Scope

router = APIRouter(prefix="/v1", tags=["rules"])


IfMatch = Annotated[
    str | None, Header(max_length=100, description='The rule\'s ETag, e.g. `"3"`, or `*`.')
]


async def _rules_reader(principal: PrincipalDep) -> Principal:
    """Reading rules is a read, and what a key that writes them needs to see them."""
    if not (principal.can(Scope.READ) or principal.can(Scope.RULES)):
        raise Forbidden("This API key lacks the `read` or `rules` scope.")
    return principal


RulesReader = Annotated[Principal, Depends(_rules_reader)]


def rule_out(rule: Rule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        prompt=rule.prompt,
        set=rule.rule_set,
        text=rule.text,
        enabled=rule.enabled,
        status=rule.status,  # type: ignore[arg-type]
        check_reason=rule.check_reason,
        priority=rule.priority,
        revision=rule.revision,
        author=rule.author,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def revision_out(revision: RuleRevision) -> RevisionOut:
    return RevisionOut(
        revision=revision.revision,
        text=revision.text,
        enabled=revision.enabled,
        status=revision.status,  # type: ignore[arg-type]
        check_reason=revision.check_reason,
        priority=revision.priority,
        author=revision.author,
        at=revision.at,
    )


def etag(rule: Rule) -> str:
    return etag_of(rule.revision)


def expected_revision(if_match: str | None) -> int | None:
    """The revision an If-Match names; None without one or for `*` (any revision)."""
    if if_match is None or if_match.strip() == "*":
        return None
    return number_in(if_match, header="If-Match", what="the rule's")


@router.post("/rules", status_code=status.HTTP_201_CREATED)
async def create_rule(
    body: RuleCreate,
    principal: RulesPrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
) -> RuleOut:
    """Write a rule for a prompt or a rule set (201). `"enabled": false` saves a draft;
    `true` runs the checks, and the rule is live if it passes (else `rejected`, with why)."""
    tokens.confine(principal, prompt=body.prompt, rule_set=body.set)
    services = RunServices.of(request.app.state)
    rule = await workflow.create(session, services, principal, body)
    response.headers["ETag"] = etag(rule)
    return rule_out(rule)


@router.get("/rules")
async def list_rules(
    principal: RulesReader,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    prompt: Annotated[
        str | None, Query(pattern=NAME_PATTERN, description="Only the rules of this prompt.")
    ] = None,
    rule_set: Annotated[
        SetName | None,
        Query(alias="set", description="Only the rules of this set."),
    ] = None,
) -> Page[RuleOut]:
    """The tenant's rules in the order they apply (priority, then age); filters `prompt`, `set`."""
    rule_set = tokens.list_filter(principal, prompt=prompt, rule_set=rule_set)
    rules, next_cursor = await service.list_rules(
        session,
        tenant_id=principal.tenant_id,
        limit=limit,
        cursor=cursor,
        prompt=prompt,
        rule_set=rule_set,
    )
    return Page(items=[rule_out(r) for r in rules], next_cursor=next_cursor)


@router.post("/rules:reorder")
async def reorder_rules(
    body: ReorderRequest, principal: RulesPrincipal, session: SessionDep
) -> RuleList:
    """Set the order of a scope's rules: `ids` lists every one of them, first to last."""
    tokens.confine(principal, prompt=body.prompt, rule_set=body.set)
    rules = await service.reorder_rules(
        session,
        tenant_id=principal.tenant_id,
        prompt=body.prompt,
        rule_set=body.set,
        ids=body.ids,
        actor=principal.actor,
    )
    return RuleList(items=[rule_out(r) for r in rules])


@router.get("/rules/{rule_id}")
async def get_rule(
    rule_id: uuid.UUID, principal: RulesReader, session: SessionDep, response: Response
) -> RuleOut:
    """One rule, with its revision as ETag."""
    rule = await service.get_rule(session, tenant_id=principal.tenant_id, rule_id=rule_id)
    tokens.confine_rule(principal, rule)
    response.headers["ETag"] = etag(rule)
    return rule_out(rule)


@router.patch("/rules/{rule_id}")
async def update_rule(
    rule_id: uuid.UUID,
    body: RulePatch,
    principal: RulesPrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> RuleOut:
    """Change a rule's `text`, `enabled` or `priority`: a new revision; with If-Match, only
    at that revision (409 otherwise). The values it already has change nothing. A change
    that leaves the rule enabled runs the checks again."""
    await tokens.confine_rule_id(session, principal, rule_id)
    services = RunServices.of(request.app.state)
    rule = await workflow.update(
        session, services, principal, rule_id, body, expected_revision(if_match)
    )
    response.headers["ETag"] = etag(rule)
    return rule_out(rule)


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(
    rule_id: uuid.UUID, principal: RulesPrincipal, session: SessionDep, if_match: IfMatch = None
) -> None:
    """Delete a rule and its history; with If-Match, only at that revision (409 otherwise)."""
    await tokens.confine_rule_id(session, principal, rule_id)
    await service.delete_rule(
        session,
        tenant_id=principal.tenant_id,
        rule_id=rule_id,
        actor=principal.actor,
        expected_revision=expected_revision(if_match),
    )


@router.get("/rules/{rule_id}/history")
async def rule_history(
    rule_id: uuid.UUID,
    principal: RulesReader,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[RevisionOut]:
    """Every revision of a rule, newest first, each whole: text, enabled, priority, status."""
    await tokens.confine_rule_id(session, principal, rule_id)
    revisions, next_cursor = await service.rule_history(
        session, tenant_id=principal.tenant_id, rule_id=rule_id, limit=limit, cursor=cursor
    )
    return Page(items=[revision_out(r) for r in revisions], next_cursor=next_cursor)
