"""Everything a version must satisfy before it is saved, reported as one 422 naming each field.

Templates are analyzed (parsed, never compiled on the web process) for syntax, the variables
they use and the context templates they include. Includes are followed through the versions
they resolve to now, so a cycle is refused at save time; a later label move that closes one is
caught by the include-depth limit when rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic import rendering
from promptlogic.errors import InvalidInput
from promptlogic.prompts.binding_schemas import arguments_of
from promptlogic.prompts.models import Prompt
from promptlogic.prompts.resolution import parse_include, resolve_include

MAX_INCLUDE_DEPTH = rendering.RenderLimits().max_include_depth
MAX_INCLUDES = 50


@dataclass
class Problems:
    items: list[dict[str, str]] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append({"field": where, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            detail = "; ".join(f"{p['field']}: {p['message']}" for p in self.items)
            raise InvalidInput(detail, errors=self.items)


def templates_of(content: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """(field, source) of every template in a version's content."""
    if content.get("template") is not None:
        return [(f"{where}.template", content["template"])]
    return [
        (f"{where}.messages.{i}.content", message["content"])
        for i, message in enumerate(content.get("messages") or [])
    ]


def _check_shape(kind: str, content: dict[str, Any], where: str, problems: Problems) -> None:
    if kind == "chat":
        if not content.get("messages"):
            problems.add(f"{where}.messages", "a chat prompt needs at least one message")
        if content.get("template") is not None:
            problems.add(f"{where}.template", "only context templates hold `template`")
        return
    if not content.get("template"):
        problems.add(f"{where}.template", "a context template needs `template`")
    for name in ("messages", "response_format"):
        if content.get(name):
            problems.add(f"{where}.{name}", "a context template has no " + name)
    if content.get("tools"):
        problems.add(f"{where}.tools", "a context template has no tools")
    if content.get("context"):
        problems.add(f"{where}.context", "a context template has no bindings of its own")


async def _check_schemas(
    renderer: rendering.Renderer, content: dict[str, Any], where: str, problems: Problems
) -> None:
    """Every JSON Schema of the version, checked in a render worker (they can be large)."""
    schemas = []
    if content.get("input_schema") is not None:
        schemas.append((f"{where}.input_schema", content["input_schema"]))
        if content["input_schema"].get("type", "object") != "object":
            problems.add(f"{where}.input_schema", "must describe an object of variables")
    if content.get("response_format") is not None:
        schemas.append((f"{where}.response_format", content["response_format"]))
    for i, tool in enumerate(content.get("tools") or []):
        schemas.append((f"{where}.tools.{i}.function.parameters", tool["function"]["parameters"]))
    for path, schema in schemas:
        try:
            found = await renderer.check_schema(schema, field=path)
        except rendering.RenderError as exc:  # a deadline: the schema is too costly to check
            problems.items.extend(exc.errors or [{"field": path, "message": str(exc)}])
            continue
        for message in found:
            problems.add(path, message)


async def check_version(
    session: AsyncSession,
    *,
    prompt: Prompt,
    content: dict[str, Any],
    field: str,
    renderer: rendering.Renderer,
) -> None:
    """Raise one 422 listing every problem of `content` as a new version of `prompt`."""
    problems = Problems()
    walk = _IncludeWalk(session, prompt, renderer, problems)
    _check_shape(prompt.kind, content, field, problems)
    await _check_schemas(renderer, content, field, problems)
    variables: set[str] = set()
    for where, source in templates_of(content, field):
        try:
            info = await renderer.check(source, field=where)
        except rendering.RenderError as problem:
            problems.items.extend(problem.errors or [{"field": where, "message": str(problem)}])
            continue
        variables |= info.variables
        for ref in info.includes:
            variables |= await walk.follow(ref, where, depth=1)
    variables = await _check_bindings(content, field, renderer, variables, problems)
    schema = content.get("input_schema")
    if schema is not None and not problems.items:
        declared = set((schema.get("properties") or {}).keys())
        for index, binding in enumerate(content.get("context") or []):
            if binding["name"] in declared:
                problems.add(
                    f"{field}.context.{index}.name",
                    f"`{binding['name']}` is also a variable of the input schema",
                )
        for name in sorted(variables - declared):
            problems.add(
                f"{field}.input_schema",
                f"the templates use `{name}`, which the input schema does not declare",
            )
    problems.raise_if_any()


async def _check_bindings(
    content: dict[str, Any],
    field: str,
    renderer: rendering.Renderer,
    variables: set[str],
    problems: Problems,
) -> set[str]:
    """Check the bindings; return the variables a caller must give: the templates' (less the
    bound names, which the bindings give) and those of the bindings' arguments."""
    bindings = content.get("context") or []
    names = [binding["name"] for binding in bindings]
    arguments: set[str] = set()
    for index, binding in enumerate(bindings):
        where = f"{field}.context.{index}"
        if names.index(binding["name"]) != index:
            problems.add(f"{where}.name", f"`{binding['name']}` names an earlier binding too")
        for argument, source in arguments_of(binding):
            try:
                info = await renderer.check(source, field=f"{where}.{argument}")
            except rendering.RenderError as problem:
                problems.items.extend(
                    problem.errors or [{"field": f"{where}.{argument}", "message": str(problem)}]
                )
                continue
            if info.includes:
                problems.add(f"{where}.{argument}", "cannot include templates")
            if used := sorted(info.variables & set(names)):
                problems.add(f"{where}.{argument}", f"cannot use a bound value: {', '.join(used)}")
            arguments |= info.variables
    return (variables - set(names)) | arguments


@dataclass
class _IncludeWalk:
    """Follows includes through the versions they resolve to now, gathering their variables.

    Each distinct include reference is resolved once (its variables are remembered), and at
    most MAX_INCLUDES are visited, so a fan-out of labels cannot make a save exponential.
    """

    session: AsyncSession
    prompt: Prompt
    renderer: rendering.Renderer
    problems: Problems
    visited: dict[str, set[str]] = field(default_factory=dict)

    async def follow(
        self, ref: str, where: str, depth: int, trail: tuple[str, ...] = ()
    ) -> set[str]:
        parsed = parse_include(ref)
        if parsed is None:
            self.problems.add(where, f"`{ref}` is not a context template name (NAME or NAME@LABEL)")
            return set()
        trail = (*trail, parsed.name)
        if parsed.name == self.prompt.name or len(set(trail)) < len(trail):
            self.problems.add(where, "include cycle: " + " → ".join((self.prompt.name, *trail)))
            return set()
        if ref in self.visited:
            return self.visited[ref]
        if depth > MAX_INCLUDE_DEPTH:
            self.problems.add(where, f"includes nest deeper than {MAX_INCLUDE_DEPTH} levels")
            return set()
        if len(self.visited) >= MAX_INCLUDES:
            self.problems.add(where, f"more than {MAX_INCLUDES} different includes")
            return set()
        self.visited[ref] = set()
        try:
            _, version = await resolve_include(
                self.session, tenant_id=self.prompt.tenant_id, ref=parsed, field=where
            )
        except InvalidInput as exc:
            self.problems.items.extend(exc.errors or [])
            return set()
        try:
            info = await self.renderer.check(version.template or "", field=where)
        except rendering.RenderError:
            return set()  # it was valid when saved; nothing this version can fix
        variables = set(info.variables)
        for nested in info.includes:
            variables |= await self.follow(nested, where, depth + 1, trail)
        self.visited[ref] = variables
        return variables
