"""Rendering a prompt version: resolve (cached), validate the variables, render in the sandbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic import rendering
from promptlogic.errors import InvalidInput, NotFound
from promptlogic.prompts.cache import PlanCache, RenderPlan, Selector, VersionUsed
from promptlogic.prompts.checks import MAX_INCLUDES
from promptlogic.prompts.resolution import parse_include, resolve_include, resolve_prompt_version

DEFAULT_LABEL = "production"


@dataclass(frozen=True, slots=True)
class Rendered:
    plan: RenderPlan
    messages: list[dict[str, str]]


def selector_for(label: str | None, version: int | None) -> Selector:
    if version is not None:
        return ("version", version)
    return ("label", label or DEFAULT_LABEL)


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
    if prompt.kind != "chat":
        raise InvalidInput.field(
            "path.name", "a context template renders only through the prompts that include it"
        )
    messages = version.messages or []
    templates = [m["content"] for m in messages]
    variables: set[str] = set()
    includes: dict[str, str] = {}
    used = [VersionUsed(prompt.name, version.number)]
    pending = list(templates)
    while pending:
        info = await renderer.check(pending.pop())
        variables |= info.variables
        for ref in info.includes:
            if ref in includes:
                continue
            if len(includes) >= MAX_INCLUDES:
                raise InvalidInput.field("include", f"more than {MAX_INCLUDES} different includes")
            parsed = parse_include(ref)
            if parsed is None:
                raise InvalidInput.field("include", f"`{ref}` is not a context template name")
            included, included_version = await resolve_include(
                session, tenant_id=tenant_id, ref=parsed, field="include"
            )
            source = included_version.template or ""
            includes[ref] = source
            used.append(VersionUsed(included.name, included_version.number))
            pending.append(source)
    return RenderPlan(
        prompt=prompt.name,
        version=version.number,
        label=value if kind == "label" else None,  # type: ignore[arg-type]
        roles=tuple(m["role"] for m in messages),
        templates=tuple(templates),
        includes=tuple(sorted(includes.items())),
        input_schema=version.input_schema or rendering.default_schema(variables),
        versions_used=tuple(dict.fromkeys(used)),
        model=dict(version.model or {}),
        response_format=version.response_format,
    )


async def render_prompt(
    session: AsyncSession,
    *,
    cache: PlanCache,
    renderer: rendering.Renderer,
    tenant_id: uuid.UUID,
    name: str,
    selector: Selector,
    variables: dict[str, Any],
) -> Rendered:
    """Validate the variables and render a version's messages in one trip to a render worker;
    no database trip when the plan is cached."""
    with rendering.sharing(tenant_id):  # one tenant cannot hold every render worker
        plan = cache.get(tenant_id, name, selector)
        if plan is None:
            generation = cache.generation
            plan = await load_plan(
                session, renderer=renderer, tenant_id=tenant_id, name=name, selector=selector
            )
            cache.put(tenant_id, name, selector, plan, loaded_at_generation=generation)
        contents = await renderer.render(
            plan.templates,
            includes=dict(plan.includes),
            variables=variables,
            schema=plan.input_schema,
        )
        messages = [
            {"role": role, "content": content}
            for role, content in zip(plan.roles, contents, strict=True)
        ]
        return Rendered(plan=plan, messages=messages)
