"""Rendering an unsaved draft of a version: the editor's live preview.

A draft is checked exactly as a save would check it (`checks.check_version`: template syntax,
schemas, includes and their cycles), its includes resolve as a saved version's do (a context
template's `production`, else its latest), and it renders in a render worker, never in the web
process. Problems come back as data (`{field, message, line?}`), named as a save names them
(`body.messages.0.content`, `body.input_schema`, `variables.NAME`), not as a 422: a preview
with a broken template is a working preview.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic import rendering
from promptlogic.errors import InvalidInput
from promptlogic.prompts.binding_schemas import arguments_of
from promptlogic.prompts.bindings import Binder, bind
from promptlogic.prompts.cache import VersionUsed
from promptlogic.prompts.checks import check_version
from promptlogic.prompts.models import Prompt
from promptlogic.prompts.render import collect_includes

FIELD = "body"  # problems are named as the save's are, so one mapping shows both


@dataclass(frozen=True, slots=True)
class DraftRender:
    """A preview: the rendered messages, or the problems that prevent them."""

    messages: list[dict[str, str]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    # The schema the sample variables were checked against: the draft's own, else the one
    # inferred from the variables its templates use; None when the templates do not parse.
    input_schema: dict[str, Any] | None = None
    includes: tuple[VersionUsed, ...] = ()


def _entries(
    prompt: Prompt, messages: list[dict[str, str]] | None, template: str | None
) -> tuple[list[str], list[str], list[str]]:
    """(roles, sources, field names) of the draft's entry templates."""
    if prompt.kind == "context":
        return ["template"], [template or ""], [f"{FIELD}.template"]
    listed = messages or []
    return (
        [m["role"] for m in listed],
        [m["content"] for m in listed],
        [f"{FIELD}.messages.{i}.content" for i in range(len(listed))],
    )


async def render_draft(
    session: AsyncSession,
    *,
    renderer: rendering.Renderer,
    prompt: Prompt,
    messages: list[dict[str, str]] | None = None,
    template: str | None = None,
    input_schema: dict[str, Any] | None = None,
    context: list[dict[str, Any]] | None = None,
    variables: dict[str, Any],
    binder: Binder | None = None,
) -> DraftRender:
    """Check and render a draft of a new version of `prompt` with sample `variables`: the
    messages of a chat prompt, or a context template's text alone (role `template`). The
    draft's context bindings bind real state, as a run of the saved version would."""
    bindings = list(context or [])
    content = {
        "messages": messages if prompt.kind == "chat" else None,
        "template": template if prompt.kind == "context" else None,
        "input_schema": input_schema,
        "context": bindings,
    }
    roles, sources, fields = _entries(prompt, messages, template)
    arguments = [source for b in bindings for _, source in arguments_of(b)]
    with rendering.sharing(prompt.tenant_id):  # one tenant cannot hold every render worker
        try:
            await check_version(
                session, prompt=prompt, content=content, field=FIELD, renderer=renderer
            )
            reached = await collect_includes(
                session,
                renderer=renderer,
                tenant_id=prompt.tenant_id,
                templates=[*sources, *arguments],
            )
        except InvalidInput as exc:
            return DraftRender(problems=_problems(exc), input_schema=input_schema)
        bound_names = {b["name"] for b in bindings}
        schema = input_schema or rendering.default_schema(reached.variables - bound_names)
        try:
            values = {}
            if bindings:
                if binder is None:
                    raise RuntimeError("a draft with context bindings needs a binder")
                bound = await bind(
                    binder,
                    renderer,
                    prompt.tenant_id,
                    bindings,
                    schema,
                    variables,
                    prompt=prompt.name,
                )
                values = bound.values
            texts = await renderer.render(
                sources,
                includes=reached.sources,
                variables={**variables, **values},
                schema=None if bindings else schema,
                fields=fields,
            )
        except InvalidInput as exc:
            return DraftRender(problems=_problems(exc), input_schema=schema, includes=reached.used)
    rendered = [{"role": role, "content": text} for role, text in zip(roles, texts, strict=True)]
    return DraftRender(messages=rendered, input_schema=schema, includes=reached.used)


def _problems(exc: InvalidInput) -> list[dict[str, Any]]:
    return list(exc.errors or [{"field": FIELD, "message": exc.detail}])
