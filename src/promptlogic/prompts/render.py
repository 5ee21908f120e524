"""Rendering a prompt version: resolve (cached), validate the variables, render in the sandbox."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic import rendering
from promptlogic.errors import InvalidInput, NotFound
from promptlogic.prompts.binding_schemas import arguments_of
from promptlogic.prompts.bindings import Binder, bind
from promptlogic.prompts.cache import PlanCache, RenderPlan, Selector, VersionUsed
from promptlogic.prompts.checks import MAX_INCLUDES
from promptlogic.prompts.models import PromptLabel
from promptlogic.prompts.resolution import (
    LATEST,
    parse_include,
    resolve_include,
    resolve_prompt_version,
)
from promptlogic.rules.policy import policy_of

DEFAULT_LABEL = "production"


@dataclass(frozen=True, slots=True)
class Rendered:
    plan: RenderPlan
    messages: list[dict[str, str]]
    arm: int | None = None  # the version a split label picked; None without a split
    bound: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # what was bound


def pick_arm(split: tuple[tuple[int, int], ...], salt: str, split_key: str | None) -> int:
    """A version of a split, by weight: the same `split_key` (an end user) always gets the same
    version of the same label, so a user's experience stays consistent during an A/B test."""
    if split_key is None:
        point = random.random()  # noqa: S311 - traffic assignment, not a secret
    else:
        digest = hashlib.sha256(f"{salt}\x00{split_key}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
    total = sum(weight for _, weight in split)
    threshold = point * total
    for version, weight in split:
        threshold -= weight
        if threshold < 0:
            return version
    return split[-1][0]


def selector_for(label: str | None, version: int | None) -> Selector:
    if version is not None:
        return ("version", version)
    return ("label", label or DEFAULT_LABEL)


@dataclass(frozen=True, slots=True)
class IncludeSet:
    """What a set of templates reaches through `{% include %}`, resolved now."""

    sources: dict[str, str]  # include reference as written → the resolved template source
    variables: frozenset[str]  # every variable of the templates and of what they include
    used: tuple[VersionUsed, ...]  # the context template versions the references resolved to


async def collect_includes(
    session: AsyncSession,
    *,
    renderer: rendering.Renderer,
    tenant_id: uuid.UUID,
    templates: Sequence[str],
) -> IncludeSet:
    """Follow every include of `templates` (and of what they include) to the version it
    resolves to now; the same walk `render.load_plan` makes for a saved version."""
    variables: set[str] = set()
    sources: dict[str, str] = {}
    used: list[VersionUsed] = []
    pending = list(templates)
    while pending:
        info = await renderer.check(pending.pop())
        variables |= info.variables
        for ref in info.includes:
            if ref in sources:
                continue
            if len(sources) >= MAX_INCLUDES:
                raise InvalidInput.field("include", f"more than {MAX_INCLUDES} different includes")
            parsed = parse_include(ref)
            if parsed is None:
                raise InvalidInput.field("include", f"`{ref}` is not a context template name")
            included, version = await resolve_include(
                session, tenant_id=tenant_id, ref=parsed, field="include"
            )
            sources[ref] = version.template or ""
            used.append(VersionUsed(included.name, version.number))
            pending.append(sources[ref])
    return IncludeSet(sources, frozenset(variables), tuple(dict.fromkeys(used)))


async def load_plan(
    session: AsyncSession,
    *,
    renderer: rendering.Renderer,
    tenant_id: uuid.UUID,
    name: str,
    selector: Selector,
) -> RenderPlan:
    """Read a version and every template it includes, as one immutable plan."""
    kind, value = selector
    prompt, version = await resolve_prompt_version(
        session,
        tenant_id=tenant_id,
        name=name,
        label=value if kind == "label" else None,  # type: ignore[arg-type]
        number=value if kind == "version" else None,  # type: ignore[arg-type]
    )
    if prompt.archived:
        raise NotFound(f"Prompt `{name}` is archived.")
    split = None
    if kind == "label" and value != LATEST:
        arms = await session.scalar(
            PromptLabel.for_tenant(tenant_id, PromptLabel.split).where(
                PromptLabel.prompt_id == prompt.id, PromptLabel.name == value
            )
        )
        if arms:
            split = tuple((arm["version"], arm["weight"]) for arm in arms)
    if prompt.kind != "chat":
        raise InvalidInput.field(
            "path.name", "a context template renders only through the prompts that include it"
        )
    messages = version.messages or []
    templates = [m["content"] for m in messages]
    bindings = tuple(version.context or ())
    arguments = [template for b in bindings for _, template in arguments_of(b)]
    reached = await collect_includes(
        session, renderer=renderer, tenant_id=tenant_id, templates=[*templates, *arguments]
    )
    used = [VersionUsed(prompt.name, version.number), *reached.used]
    # Bound names are given by the bindings, not by the caller.
    variables = reached.variables - {b["name"] for b in bindings}
    return RenderPlan(
        prompt=prompt.name,
        version=version.number,
        label=value if kind == "label" else None,  # type: ignore[arg-type]
        roles=tuple(m["role"] for m in messages),
        templates=tuple(templates),
        includes=tuple(sorted(reached.sources.items())),
        input_schema=version.input_schema or rendering.default_schema(variables),
        versions_used=tuple(dict.fromkeys(used)),
        model=dict(version.model or {}),
        response_format=version.response_format,
        split=split,
        bindings=bindings,
        rule_limits=policy_of(prompt.rules_policy).run_limits(),
    )


async def render_prompt(
    sessions: async_sessionmaker[AsyncSession],
    *,
    cache: PlanCache,
    renderer: rendering.Renderer,
    tenant_id: uuid.UUID,
    name: str,
    selector: Selector,
    variables: dict[str, Any],
    split_key: str | None = None,
    binder: Binder | None = None,
) -> Rendered:
    """Validate the variables and render a version's messages in one trip to a render worker;
    no database trip when the plan is cached. A split label renders the version picked for
    `split_key`. A version with context bindings first binds them (`bindings.bind`: one more
    trip to a worker for their arguments, records from the cache, searches) and renders with
    the bound values beside the variables."""
    with rendering.sharing(tenant_id):  # one tenant cannot hold every render worker
        plan = await plan_for(sessions, cache, renderer, tenant_id, name, selector)
        arm = None
        if plan.split is not None:
            arm = pick_arm(plan.split, f"{name}@{plan.label}", split_key)
            if arm != plan.version:
                picked = await plan_for(
                    sessions, cache, renderer, tenant_id, name, ("version", arm)
                )
                plan = dataclasses.replace(picked, label=plan.label, split=plan.split)
        bound = None
        if plan.bindings:
            if binder is None:
                raise RuntimeError("a version with context bindings needs a binder")
            bound = await bind(
                binder,
                renderer,
                tenant_id,
                plan.bindings,
                plan.input_schema,
                variables,
                prompt=plan.prompt,
                rule_limits=plan.rule_limits,
            )
        contents = await renderer.render(
            plan.templates,
            includes=dict(plan.includes),
            variables=variables if bound is None else {**variables, **bound.values},
            schema=plan.input_schema if bound is None else None,  # checked while binding
        )
        messages = [
            {"role": role, "content": content}
            for role, content in zip(plan.roles, contents, strict=True)
        ]
        report = [] if bound is None else bound.report
        return Rendered(plan=plan, messages=messages, arm=arm, bound=report)


async def plan_for(
    sessions: async_sessionmaker[AsyncSession],
    cache: PlanCache,
    renderer: rendering.Renderer,
    tenant_id: uuid.UUID,
    name: str,
    selector: Selector,
) -> RenderPlan:
    """The cached plan, or one loaded in a short session of its own: a caller (a run that
    then waits on a model) never holds a pooled connection for longer than the reads."""
    plan = cache.get(tenant_id, name, selector)
    if plan is None:
        generation = cache.generation
        async with sessions() as session:
            plan = await load_plan(
                session, renderer=renderer, tenant_id=tenant_id, name=name, selector=selector
            )
        cache.put(tenant_id, name, selector, plan, loaded_at_generation=generation)
    return plan
