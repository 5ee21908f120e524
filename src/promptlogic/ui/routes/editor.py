"""The version editor: a form for a new version, prefilled from an existing one, and its live
preview (an unsaved draft rendered in the sandbox as the author types).

The form posts plain fields (messages as repeated `role`/`content` pairs, in page order; JSON
as text), so it works without its script; the script adds reordering and the preview. Every
problem, from JSON syntax to a template's syntax, is shown next to the field it concerns.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData

from promptlogic.db.engine import SessionDep
from promptlogic.errors import InvalidInput
from promptlogic.prompts import service
from promptlogic.prompts.drafts import render_draft
from promptlogic.prompts.models import Prompt, PromptVersion
from promptlogic.prompts.schemas import (
    MAX_TEMPLATE_CHARS,
    JsonObject,
    Message,
    ModelSettings,
    TemplateSource,
    VersionCreate,
)
from promptlogic.providers.service import list_connections
from promptlogic.runs.models import Run
from promptlogic.ui.routes.prompts import Name
from promptlogic.ui.web import Editor, flash, page, redirect

router = APIRouter()

ROLES = ("system", "user", "assistant")
MODEL_FIELDS = ("name", "provider", "temperature")  # shown as fields; the rest as JSON
MODEL_DEFAULTS = ModelSettings(name="-").model_dump(mode="json", exclude={"name"})
JSON_FIELDS = ("input_schema", "model_options", "response_format", "tools", "context")
BOX_LABELS = {
    "messages": "Messages",
    "template": "Template",
    "input_schema": "Input schema",
    "model": "Model options",
    "model.name": "Model",
    "model.provider": "Provider",
    "model.temperature": "Temperature",
    "response_format": "Response format",
    "tools": "Tools",
    "context": "Context bindings",
    "commit_message": "Commit message",
    "variables": "Sample variables",
}
FIELD_PATH = re.compile(r"\bbody\.messages\.(\d+)\.content\b")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@dataclass
class Draft:
    """The editor form's values, as text, exactly as the author typed them."""

    messages: list[dict[str, str]] = field(default_factory=list)
    template: str = ""
    input_schema: str = ""
    model_name: str = ""
    model_provider: str = ""
    model_temperature: str = ""
    model_options: str = ""
    response_format: str = ""
    tools: str = ""
    context: str = ""
    commit_message: str = ""

    @classmethod
    def of_version(cls, kind: str, version: PromptVersion | None) -> Draft:
        """A form prefilled from `version`; one empty system message for a new chat prompt."""
        if version is None:
            messages = [{"role": "system", "content": ""}] if kind == "chat" else []
            return cls(messages=messages, model_name=service.DEFAULT_MODEL)
        model = dict(version.model or {})
        options = {
            key: value
            for key, value in model.items()
            if key not in MODEL_FIELDS and MODEL_DEFAULTS.get(key, object()) != value
        }
        temperature = model.get("temperature")
        return cls(
            messages=[dict(m) for m in version.messages or []],
            template=version.template or "",
            input_schema="" if version.input_schema is None else _pretty(version.input_schema),
            model_name=str(model.get("name") or ""),
            model_provider=str(model.get("provider") or ""),
            model_temperature="" if temperature is None else str(temperature),
            model_options=_pretty(options) if options else "",
            response_format=""
            if version.response_format is None
            else _pretty(version.response_format),
            tools=_pretty(version.tools) if version.tools else "",
            context=json.dumps(version.context) if version.context else "",
            commit_message="",
        )

    @classmethod
    def of_form(cls, form: FormData) -> Draft:
        def text(name: str) -> str:
            value = form.get(name)
            return _lines(value) if isinstance(value, str) else ""

        roles = [_lines(r) for r in form.getlist("role") if isinstance(r, str)]
        contents = [_lines(c) for c in form.getlist("content") if isinstance(c, str)]
        return cls(
            messages=[
                {"role": role, "content": content}
                for role, content in zip(roles, contents, strict=False)  # pairs, as posted
            ],
            template=text("template"),
            input_schema=text("input_schema"),
            model_name=text("model_name"),
            model_provider=text("model_provider"),
            model_temperature=text("model_temperature"),
            model_options=text("model_options"),
            response_format=text("response_format"),
            tools=text("tools"),
            context=text("context"),
            commit_message=text("commit_message"),
        )


def _lines(value: str) -> str:
    """Browsers post a textarea's line breaks as CRLF; a template's are LF."""
    return value.replace("\r\n", "\n")


Problems = list[dict[str, Any]]


def _json(text: str, name: str, expected: type, problems: Problems) -> Any:
    """The JSON in a textarea (None when blank), or a problem naming its line and column."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        problems.append({"field": name, "message": message, "line": exc.lineno})
        return None
    if not isinstance(value, expected):
        noun = "an object ({…})" if expected is dict else "a list ([…])"
        problems.append({"field": name, "message": f"must be {noun}"})
        return None
    return value


def version_body(kind: str, draft: Draft) -> tuple[VersionCreate | None, Problems]:
    """The `VersionCreate` a form describes, or every problem found in it."""
    problems: Problems = []
    parsed = {
        name: _json(
            getattr(draft, name),
            "model" if name == "model_options" else name,
            list if name in ("tools", "context") else dict,
            problems,
        )
        for name in JSON_FIELDS
    }
    data: dict[str, Any] = {
        "input_schema": parsed["input_schema"],
        "tools": parsed["tools"] or [],
        "context": parsed["context"] or [],
        "commit_message": draft.commit_message,
    }
    if kind == "context":
        data["template"] = draft.template
    else:
        data["messages"] = draft.messages
        data["response_format"] = parsed["response_format"]
        model = dict(parsed["model_options"] or {})
        model["name"] = draft.model_name.strip()
        if draft.model_provider.strip():
            model["provider"] = draft.model_provider.strip()
        if draft.model_temperature.strip():
            model["temperature"] = draft.model_temperature.strip()
        data["model"] = model
    if problems:
        return None, problems
    try:
        return VersionCreate.model_validate(data), []
    except ValidationError as exc:
        found = [
            {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        return None, found


def box_of(name: str) -> str:
    """The form box a problem's field belongs to: `body.messages.2.content` → `messages.2`."""
    parts = name.removeprefix("body.").split(".")
    if parts[0] == "messages" and len(parts) > 1 and parts[1].isdigit():
        return f"messages.{parts[1]}"
    if parts[0] == "model" and len(parts) > 1 and parts[1] in MODEL_FIELDS:
        return f"model.{parts[1]}"
    if parts[0] in BOX_LABELS:
        return parts[0]
    return ""


def label_of(box: str) -> str:
    if box.startswith("messages."):
        return f"Message {int(box.split('.')[1]) + 1}"
    return BOX_LABELS.get(box, "The version")


def readable(message: str) -> str:
    """A problem's message with field paths in the author's words (`message 2`)."""
    return FIELD_PATH.sub(lambda m: f"message {int(m.group(1)) + 1}", message).replace(
        "body.template", "the template"
    )


def _shown(problem: dict[str, Any]) -> dict[str, Any]:
    name = str(problem.get("field", ""))
    box = box_of(name)
    plain = readable(str(problem.get("message", "")))
    # What within the box: `max_tokens` of the model options, `name` of the variables.
    rest = name.removeprefix("body.").split(".")[len(box.split(".")) :] if box else []
    inner = ".".join(rest)
    message = plain
    if inner and inner != "content" and f"`{inner}`" not in plain:
        message = f"{inner}: {plain}"
    return {
        "field": name,
        "box": box,
        "label": label_of(box),
        "message": message,
        "plain": plain,
        "line": problem.get("line"),
    }


def shown(problems: Problems) -> list[dict[str, Any]]:
    """Problems as the page shows them: the box each belongs to, in the author's words."""
    return [_shown(problem) for problem in problems]


async def _editor_page(
    request: Request,
    session: SessionDep,
    member: Editor,
    prompt: Prompt,
    draft: Draft,
    base: int | None,
    problems: Problems,
    status_code: int = 200,
) -> Response:
    connections, _ = await list_connections(session, tenant_id=member.tenant.id, limit=100)
    listed = shown(problems)
    errors: dict[str, list[dict[str, Any]]] = {}
    for problem in listed:
        errors.setdefault(problem["box"], []).append(problem)
    context = {
        "prompt": prompt,
        "draft": draft,
        "base": base,
        "roles": ROLES,
        "problems": listed,
        "errors": errors,
        "providers": [connection.name for connection in connections],
        "sample_variables": _pretty(await _last_inputs(session, member.tenant.id, prompt.name)),
    }
    return page(request, "prompts/editor.html", context, status_code=status_code)


async def _last_inputs(session: SessionDep, tenant_id: uuid.UUID, name: str) -> dict[str, Any]:
    """The prompt's last run's variables: real sample values for the preview to start from."""
    inputs = await session.scalar(
        Run.for_tenant(tenant_id, Run.inputs)
        .where(Run.prompt == name)
        .order_by(Run.created_at.desc())
        .limit(1)
    )
    return inputs if isinstance(inputs, dict) else {}


@router.get("/prompts/{name}/edit")
async def edit(
    request: Request,
    member: Editor,
    session: SessionDep,
    name: Name,
    from_version: Annotated[int | None, Query(alias="from", ge=1, lt=2**31)] = None,
) -> Response:
    """The form for a new version, prefilled from version `from` (default: the latest)."""
    prompt = await service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    number = from_version or prompt.latest_version or None
    version = await service.version_row(session, prompt, number) if number else None
    draft = Draft.of_version(prompt.kind, version)
    return await _editor_page(request, session, member, prompt, draft, number, [])


@router.post("/prompts/{name}/edit")
async def save(request: Request, member: Editor, session: SessionDep, name: Name) -> Response:
    """Save the form as a new version; the form again, as typed, with each problem by its
    field when it cannot be saved."""
    prompt = await service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    form = await request.form()
    draft = Draft.of_form(form)
    base_text = form.get("base")
    base = int(base_text) if isinstance(base_text, str) and base_text.isdigit() else None
    body, problems = version_body(prompt.kind, draft)
    if body is not None:
        try:
            saved = await service.create_version(
                session,
                tenant_id=member.tenant.id,
                name=name,
                body=body,
                actor=member.actor,
                renderer=request.app.state.renderer,
            )
        except InvalidInput as exc:  # raised by the checks, before anything is written
            problems = list(exc.errors or [{"field": "", "message": exc.detail}])
        else:
            response = redirect(f"/ui/prompts/{name}")
            number = saved.version.number
            if not saved.created:
                message = (
                    f"Nothing changed: the content is identical to version {number}; "
                    "no new version was saved."
                )
                return flash(request, response, message, "warn")
            return flash(request, response, f"Saved version {number}.")
    return await _editor_page(
        request, session, member, prompt, draft, base, problems, status_code=422
    )


TypedJson = Annotated[str, Field(max_length=MAX_TEMPLATE_CHARS)]


class PreviewRequest(BaseModel):
    """An unsaved draft and sample variables to render it with. The input schema and the
    variables may come as the text typed in the form: their JSON errors are then named, with
    line and column, as a save names them."""

    model_config = ConfigDict(extra="forbid")

    messages: Annotated[list[Message], Field(max_length=100)] | None = None
    template: TemplateSource | None = None
    input_schema: JsonObject | TypedJson | None = None
    context: list[JsonObject] | TypedJson | None = None
    variables: JsonObject | TypedJson = {}


def _bindings(context: list[Any] | None, problems: Problems) -> list[dict[str, Any]]:
    """The draft's bindings as a save would store them; a malformed one is a problem."""
    if not context:
        return []
    try:
        checked = VersionCreate(context=context).context
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            problems.append({"field": where, "message": error["msg"]})
        return []
    return [binding.model_dump(mode="json") for binding in checked]


@router.post("/prompts/{name}/preview")
async def preview(
    request: Request, member: Editor, session: SessionDep, name: Name, body: PreviewRequest
) -> Response:
    """The draft rendered in the sandbox, or its problems, each with its box and line."""
    prompt = await service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    typed: Problems = []  # JSON that does not parse: the draft is checked, but not rendered
    schema = body.input_schema
    if isinstance(schema, str):
        schema = _json(schema, "input_schema", dict, typed)
    variables = body.variables
    if isinstance(variables, str):
        variables = _json(variables, "variables", dict, typed) or {}
    context = body.context
    if isinstance(context, str):
        context = _json(context, "context", list, typed)
    rendered = await render_draft(
        session,
        renderer=request.app.state.renderer,
        prompt=prompt,
        messages=[m.model_dump() for m in body.messages or []],
        template=body.template,
        input_schema=schema,
        context=_bindings(context, typed),
        variables=variables,
        binder=request.app.state.binder,
    )
    messages, problems = rendered.messages, rendered.problems
    if typed:
        others = [p for p in problems if not str(p.get("field", "")).startswith("variables")]
        messages, problems = [], typed + others
    return JSONResponse(
        {
            "messages": messages,
            "problems": shown(problems),
            # While the schema's JSON is broken, the sample form stays as it was.
            "input_schema": None if schema is None and body.input_schema else rendered.input_schema,
            "includes": [
                {"prompt": used.prompt, "version": used.version} for used in rendered.includes
            ],
        }
    )
