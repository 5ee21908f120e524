"""The rules area: a tenant's rules by scope (a prompt, or a rule set), writing a rule next to a
preview of what it changes and the checker's verdict, and a rule's history.

Everything goes through the same services as `/v1/rules` (the workflow runs the checks before a
rule goes live), acting as the signed-in member. Rule authors see this area and nothing else;
editors and admins see it next to the rest. Preview and check are plain form posts that render
the page again with their results, so the page works without JavaScript.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import and_, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Conflict, Forbidden, InvalidInput, Problem
from promptlogic.prompts import service as prompt_service
from promptlogic.prompts.models import Prompt, PromptLabel, PromptVersion
from promptlogic.prompts.render import DEFAULT_LABEL, load_plan
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.rules import preview as rule_preview
from promptlogic.rules import service, workflow
from promptlogic.rules.models import Rule
from promptlogic.rules.policy import Governing, governing
from promptlogic.rules.schemas import (
    MAX_SET_CHARS,
    MAX_TEXT_CHARS,
    PreviewRequest,
    RuleChange,
    RuleCreate,
    RulePatch,
    rule_text,
    set_name,
)
from promptlogic.runs.pipeline import RunServices
from promptlogic.tenancy.roles import Scope
from promptlogic.ui.sessions import SignedIn
from promptlogic.ui.web import RulesAuthor, RulesReader, flash, page, redirect

router = APIRouter()

SCOPE_BATCH = 200  # rules read per query when a page shows a whole scope
HISTORY_PAGE = 50
PromptName = Annotated[str, Path(pattern=NAME_PATTERN)]
Revision = Annotated[str, Form(max_length=20)]
Action = Literal["preview", "check", "draft", "enable"]
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True, slots=True)
class RuleScope:
    """Where rules live: one prompt's own rules, or a named rule set."""

    prompt: str | None
    rule_set: str | None

    @classmethod
    def of(cls, rule: Rule) -> RuleScope:
        return cls(rule.prompt, rule.rule_set)

    @property
    def kind(self) -> str:
        return "set" if self.rule_set is not None else "prompt"

    @property
    def name(self) -> str:
        return str(self.rule_set if self.rule_set is not None else self.prompt)

    @property
    def url(self) -> str:
        """A set's name may hold any printable character: it travels as a query value."""
        if self.rule_set is not None:
            return f"/ui/rules/set?name={quote(self.rule_set, safe='')}"
        return f"/ui/rules/prompt/{self.prompt}"

    @property
    def new_url(self) -> str:
        return f"/ui/rules/new?{self.kind}={quote(self.name, safe='')}"


@dataclass(frozen=True, slots=True)
class BoundPrompt:
    """A chat prompt whose served version (production, else the latest) binds rules."""

    name: str
    description: str
    version: int
    label: str | None  # `production` when that is what runs get
    set_template: str | None  # the binding's set, e.g. `account-{{ account_id }}`; None: own


@dataclass(slots=True)
class RuleForm:
    """What the write form holds, as typed: kept whole when the page comes back with errors."""

    text: str = ""
    revision: int | None = None
    inputs: str | None = None  # None: start from an example built from the input schema
    preview_prompt: str | None = None


async def _bound_prompts(
    session: AsyncSession, tenant_id: uuid.UUID, name: str | None = None
) -> list[BoundPrompt]:
    """The tenant's chat prompts whose served version has a `rules` binding, in one query."""
    production = aliased(PromptLabel)
    statement = (
        Prompt.for_tenant(
            tenant_id,
            Prompt.name,
            Prompt.description,
            PromptVersion.number,
            PromptVersion.context,
            production.version.label("production"),
        )
        .outerjoin(
            production,
            and_(production.prompt_id == Prompt.id, production.name == DEFAULT_LABEL),
        )
        .join(
            PromptVersion,
            and_(
                PromptVersion.prompt_id == Prompt.id,
                PromptVersion.number == func.coalesce(production.version, Prompt.latest_version),
            ),
        )
        .where(
            Prompt.kind == "chat",
            Prompt.archived.is_(False),
            PromptVersion.context.contains([{"source": "rules"}]),
        )
        .order_by(Prompt.name)
    )
    if name is not None:
        statement = statement.where(Prompt.name == name)
    found = []
    for row in await session.execute(statement):
        binding = next(b for b in row.context if b.get("source") == "rules")
        label = DEFAULT_LABEL if row.production is not None else None
        found.append(BoundPrompt(row.name, row.description, row.number, label, binding.get("set")))
    return found


async def _counts(session: AsyncSession, tenant_id: uuid.UUID, column: Any) -> dict[str, int]:
    rows = await session.execute(
        Rule.for_tenant(tenant_id, column, func.count())
        .where(column.is_not(None))
        .group_by(column)
        .order_by(column)
    )
    return {name: count for name, count in rows}


@router.get("/rules")
async def index(request: Request, member: RulesReader, session: SessionDep) -> Response:
    """The prompts that take rules and the rule sets that hold some, with their counts."""
    tenant_id = member.tenant.id
    bound = await _bound_prompts(session, tenant_id)
    by_prompt = await _counts(session, tenant_id, Rule.prompt)
    # Rules of a prompt whose served version no longer binds them: still listed, to find them.
    unbound = sorted(set(by_prompt) - {prompt.name for prompt in bound})
    context = {
        "prompts": bound,
        "unbound": unbound,
        "by_prompt": by_prompt,
        "sets": await _counts(session, tenant_id, Rule.rule_set),
    }
    return page(request, "rules/index.html", context)


async def _scope_rules(session: AsyncSession, tenant_id: uuid.UUID, scope: RuleScope) -> list[Rule]:
    """Every rule of a scope, in the order they apply (a policy caps a scope at 1,000)."""
    rules: list[Rule] = []
    cursor = None
    while True:
        batch, cursor = await service.list_rules(
            session,
            tenant_id=tenant_id,
            limit=SCOPE_BATCH,
            cursor=cursor,
            prompt=scope.prompt,
            rule_set=scope.rule_set,
        )
        rules += batch
        if cursor is None:
            return rules


def _limits(policies: list[Governing]) -> dict[str, Any]:
    """What every governing policy allows at once: the tightest of their limits."""
    return {
        "allowed": all(g.policy.allowed for g in policies),
        "max_rules": min(g.policy.max_rules for g in policies),
        "max_chars": min(g.policy.max_chars for g in policies),
        "owners": [g.prompt for g in policies if g.prompt is not None],
        "checkers": [
            f"{g.policy.checker.prompt} ({g.policy.checker.label})"
            for g in policies
            if g.policy.checker is not None
        ],
        "texts": [(g.prompt, g.policy.policy_text) for g in policies if g.policy.policy_text],
    }


async def _scope_limits(
    session: AsyncSession, tenant_id: uuid.UUID, scope: RuleScope
) -> dict[str, Any]:
    policies = await governing(session, tenant_id, prompt=scope.prompt, rule_set=scope.rule_set)
    return _limits(policies)


async def _scope_page(
    request: Request, member: SignedIn, session: AsyncSession, scope: RuleScope
) -> Response:
    tenant_id = member.tenant.id
    bound = await _bound_prompts(session, tenant_id, scope.prompt)
    context = {
        "scope": scope,
        "rules": await _scope_rules(session, tenant_id, scope),
        "limits": await _scope_limits(session, tenant_id, scope),
        # A prompt's binding (own rules or a set), or for a set, the prompts that take sets.
        "bound": bound if scope.prompt else [p for p in bound if p.set_template],
    }
    return page(request, "rules/scope.html", context)


@router.get("/rules/prompt/{name}")
async def prompt_rules(
    request: Request, member: RulesReader, session: SessionDep, name: PromptName
) -> Response:
    """A prompt's own rules, in order, with what its policy allows."""
    await prompt_service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    return await _scope_page(request, member, session, RuleScope(name, None))


def _valid_set(name: str) -> str:
    try:
        return set_name(name)
    except ValueError as exc:
        raise InvalidInput.field("name", f"a rule set's name {exc}") from None


@router.get("/rules/set")
async def set_rules(
    request: Request,
    member: RulesReader,
    session: SessionDep,
    name: Annotated[str, Query(max_length=MAX_SET_CHARS)],
) -> Response:
    """A rule set's rules (a set with none is an empty list: sets are not created)."""
    scope = RuleScope(None, _valid_set(name))
    return await _scope_page(request, member, session, scope)


def example_of(schema: Any, depth: int = 0) -> Any:
    """A value `schema` accepts, to start the preview's inputs from: its default, first example
    or first allowed value, else a placeholder of its type."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    for key in ("examples", "enum"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: example_of(sub, depth + 1) for name, sub in properties.items()}
    placeholders = {"array": [], "integer": 1, "number": 1, "boolean": False, "null": None}
    return placeholders.get(kind, "example") if isinstance(kind, str) else "example"


def variables_naming(template: str, name: str) -> dict[str, str]:
    """The variables that make a plain set template (`account-{{ account_id }}`) render to
    `name` (`{"account_id": "42"}` for `account-42`); {} if it cannot, or is not that plain."""
    parts = _VARIABLE.split(template)
    literals, variables = parts[0::2], parts[1::2]
    if any("{" in literal for literal in literals) or len(set(variables)) != len(variables):
        return {}
    pattern = re.escape(literals[0]) + "".join(
        f"(?P<{variable}>.+?)" + re.escape(literal)
        for variable, literal in zip(variables, literals[1:], strict=True)
    )
    found = re.fullmatch(pattern, name, re.DOTALL)
    return found.groupdict() if found else {}


def _typed(value: str, schema: Any) -> Any:
    """A value taken from a set's name, as the input schema types it (an integer id)."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind in ("integer", "number") and value.isdigit():
        return int(value)
    return value


async def _example_inputs(
    request: Request,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    target: BoundPrompt,
    scope: RuleScope,
) -> dict[str, Any]:
    """Inputs to preview with: an example of the prompt's input schema, and for a set, the
    variables that make its binding name this set (so the preview binds the set's rules)."""
    plan = await load_plan(
        session,
        renderer=request.app.state.renderer,
        tenant_id=tenant_id,
        name=target.name,
        selector=("label", DEFAULT_LABEL) if target.label else ("version", target.version),
    )
    example = example_of(plan.input_schema)
    inputs = example if isinstance(example, dict) else {}
    if scope.rule_set is not None and target.set_template:
        properties = plan.input_schema.get("properties") or {}
        for variable, value in variables_naming(target.set_template, scope.rule_set).items():
            inputs[variable] = _typed(value, properties.get(variable))
    return inputs


async def _write_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    scope: RuleScope,
    rule: Rule | None,
    form: RuleForm,
    *,
    results: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """The write form (new rule or edit) with its preview panel, and whatever a post produced:
    `results` may hold `preview`, `verdict`, `errors` (by field) and `conflict`."""
    tenant_id = member.tenant.id
    bound = await _bound_prompts(session, tenant_id, scope.prompt)
    targets = bound if scope.prompt else [p for p in bound if p.set_template]
    target = next((p for p in targets if p.name == form.preview_prompt), None)
    target = target or (targets[0] if targets else None)
    inputs_text, inputs_problem = form.inputs, None
    if inputs_text is None:
        inputs: dict[str, Any] = {}
        if target is not None:
            try:
                inputs = await _example_inputs(request, session, tenant_id, target, scope)
            except Problem as problem:
                inputs_problem = problem.detail
        inputs_text = json.dumps(inputs, indent=2, ensure_ascii=False)
    context = {
        "scope": scope,
        "rule": rule,
        "form": form,
        "limits": await _scope_limits(session, tenant_id, scope),
        "targets": targets,
        "target": target,
        "inputs_text": inputs_text,
        "inputs_problem": inputs_problem,
        "preview": None,
        "verdict": None,
        "errors": {},
        "conflict": None,
        **(results or {}),
    }
    return page(request, "rules/write.html", context, status_code=status_code)


def _scope_of_query(prompt: str | None, rule_set: str | None) -> RuleScope:
    if (prompt is None) == (rule_set is None):
        raise InvalidInput.field("prompt", "give the rule's scope: a `prompt` or a `set`")
    if prompt is not None and not re.fullmatch(NAME_PATTERN, prompt):
        raise InvalidInput.field("prompt", "not a prompt's name")
    return RuleScope(prompt, None if rule_set is None else _valid_set(rule_set))


@router.get("/rules/new")
async def new_rule(
    request: Request,
    member: RulesAuthor,
    session: SessionDep,
    prompt: Annotated[str | None, Query(max_length=100)] = None,
    rule_set: Annotated[str | None, Query(alias="set", max_length=MAX_SET_CHARS)] = None,
) -> Response:
    """An empty rule for a prompt or a set, with the preview ready to try it."""
    scope = _scope_of_query(prompt, rule_set)
    if scope.prompt is not None:
        await prompt_service.get_prompt(session, tenant_id=member.tenant.id, name=scope.prompt)
    return await _write_page(request, member, session, scope, None, RuleForm())


@router.get("/rules/{rule_id}")
async def rule_page(
    request: Request, member: RulesReader, session: SessionDep, rule_id: uuid.UUID
) -> Response:
    """A rule, to edit (its status and a rejection's reason on top)."""
    rule = await service.get_rule(session, tenant_id=member.tenant.id, rule_id=rule_id)
    form = RuleForm(text=rule.text, revision=rule.revision)
    return await _write_page(request, member, session, RuleScope.of(rule), rule, form)


@router.get("/rules/{rule_id}/history")
async def history(
    request: Request,
    member: RulesReader,
    session: SessionDep,
    rule_id: uuid.UUID,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Every revision of a rule, newest first: text, status, reason, author, time."""
    rule = await service.get_rule(session, tenant_id=member.tenant.id, rule_id=rule_id)
    revisions, next_cursor = await service.rule_history(
        session, tenant_id=member.tenant.id, rule_id=rule_id, limit=HISTORY_PAGE, cursor=cursor
    )
    context = {
        "rule": rule,
        "scope": RuleScope.of(rule),
        "revisions": revisions,
        "next_cursor": next_cursor,
    }
    return page(request, "rules/history.html", context)


def _revision(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _field_errors(problem: Problem) -> dict[str, str]:
    """A service's 422 as the form's fields: the text, or the scope (shown on top)."""
    errors: dict[str, str] = {}
    for error in problem.errors or [{"field": "", "message": problem.detail}]:
        field = "text" if error["field"].endswith(".text") else "scope"
        errors.setdefault(field, error["message"])
    return errors


def _parsed_inputs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object ({…}) of the prompt's variables")
    return value


def _bound_texts(result: dict[str, Any], texts: dict[str, str]) -> list[dict[str, Any]]:
    """What a preview run bound through its `rules` bindings, with each rule's text."""
    return [
        {
            "set": binding.get("set"),
            "rules": [texts.get(entry["id"], entry["id"]) for entry in binding.get("rules", [])],
        }
        for binding in result.get("bound", [])
        if binding.get("source") == "rules"
    ]


async def _preview(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    scope: RuleScope,
    rule: Rule | None,
    form: RuleForm,
) -> dict[str, Any]:
    """Run the prompt under the live rules and with this rule as written, side by side."""
    if not member.can(Scope.RUN):
        raise Forbidden(f"Your role ({member.role}) cannot run prompts, so cannot preview.")
    try:
        inputs = _parsed_inputs(form.inputs or "")
    except ValueError as exc:
        return {"errors": {"inputs": str(exc)}}
    bound = await _bound_prompts(session, member.tenant.id, scope.prompt)
    target = next((p for p in bound if p.name == (scope.prompt or form.preview_prompt)), None)
    if target is None:
        return {"errors": {"preview": "Choose a prompt that binds rules to preview with."}}
    live = await _scope_rules(session, member.tenant.id, scope)
    current = {str(r.id): r.text for r in live}
    draft_id = "draft-1" if rule is None else str(rule.id)
    change = (
        RuleChange(text=form.text) if rule is None else RuleChange(rule=rule.id, text=form.text)
    )
    body = PreviewRequest(
        prompt=target.name,
        label=target.label,
        version=None if target.label else target.version,
        inputs=inputs,
        set=scope.rule_set,
        changes=[change],
    )
    try:
        answer = await rule_preview.preview(
            session, RunServices.of(request.app.state), member.principal, body
        )
    except Problem as problem:
        await session.rollback()
        details = [e["message"] for e in problem.errors or []] or [problem.detail]
        return {"errors": {"preview": "; ".join(details)}}
    sides = []
    for which, texts in (("current", current), ("draft", {**current, draft_id: form.text})):
        result = answer[which]
        sides.append({"which": which, "result": result, "bound": _bound_texts(result, texts)})
    return {"preview": {"prompt": target.name, "sides": sides}}


async def _check(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    scope: RuleScope,
    rule: Rule | None,
    text: str,
) -> dict[str, Any]:
    """The verdict enabling the rule would get, saving nothing."""
    try:
        verdict = await workflow.check(
            session,
            RunServices.of(request.app.state),
            member.principal,
            prompt=scope.prompt,
            rule_set=scope.rule_set,
            text=text,
            rule_id=None if rule is None else rule.id,
        )
    except InvalidInput as problem:
        await session.rollback()
        return {"errors": _field_errors(problem)}
    return {"verdict": verdict.as_json()}


async def _save(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    scope: RuleScope,
    rule: Rule | None,
    form: RuleForm,
    enable: bool,
) -> Rule:
    services = RunServices.of(request.app.state)
    if rule is None:
        body = RuleCreate(prompt=scope.prompt, set=scope.rule_set, text=form.text, enabled=enable)
        return await workflow.create(session, services, member.principal, body)
    patch = RulePatch(text=form.text, enabled=enable)
    return await workflow.update(session, services, member.principal, rule.id, patch, form.revision)


def _saved(request: Request, saved: Rule, enable: bool) -> Response:
    """Back to the scope with what happened; a rejected rule's page shows the reason."""
    scope = RuleScope.of(saved)
    if saved.status == "rejected":
        message = f"The rule was not enabled: {saved.check_reason}"
        return flash(request, redirect(f"/ui/rules/{saved.id}"), message, "error")
    message = "Saved and enabled: the rule is live." if enable else "Saved as a draft."
    return flash(request, redirect(scope.url), message)


async def _written_to(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    rule: str,
    prompt: str | None,
    rule_set: str | None,
) -> tuple[RuleScope, uuid.UUID | None]:
    """The scope a write form posts to, and the rule it edits (None: a new one); 404 for a
    rule or prompt the tenant does not have."""
    if not rule:
        scope = _scope_of_query(prompt or None, rule_set or None)
        if scope.prompt is not None:
            await prompt_service.get_prompt(session, tenant_id=tenant_id, name=scope.prompt)
        return scope, None
    try:
        rule_id = uuid.UUID(rule)
    except ValueError:
        raise InvalidInput.field("rule", "not a rule's id") from None
    found = await service.get_rule(session, tenant_id=tenant_id, rule_id=rule_id)
    return RuleScope.of(found), rule_id


@router.post("/rules/write")
async def write(
    request: Request,
    member: RulesAuthor,
    session: SessionDep,
    action: Annotated[Action, Form()],
    text: Annotated[str, Form(max_length=4 * MAX_TEXT_CHARS)] = "",
    rule: Annotated[str, Form(max_length=40)] = "",
    prompt: Annotated[str | None, Form(max_length=100)] = None,
    rule_set: Annotated[str | None, Form(alias="set", max_length=MAX_SET_CHARS)] = None,
    revision: Revision = "",
    inputs: Annotated[str, Form(max_length=100_000)] = "",
    preview_prompt: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """The write form's buttons: preview, check (both show the page again with their
    results), save as a draft, or save and enable (both run through the rule's checks)."""
    tenant_id = member.tenant.id
    scope, rule_id = await _written_to(session, tenant_id, rule, prompt, rule_set)
    form = RuleForm(text, _revision(revision), inputs, preview_prompt or None)

    async def again(results: dict[str, Any], status_code: int) -> Response:
        """The form as typed, with `results`; the rule read again (a rollback expired it)."""
        current = None
        if rule_id is not None:
            current = await service.get_rule(session, tenant_id=tenant_id, rule_id=rule_id)
        if "conflict" in results and current is not None:
            results["conflict"].update(rule=current, seen=form.revision)
            form.revision = current.revision  # saving again is a deliberate overwrite
        return await _write_page(
            request,
            member,
            session,
            scope,
            current,
            form,
            results=results,
            status_code=status_code,
        )

    try:
        form.text = rule_text(text)
    except ValueError as exc:
        return await again({"errors": {"text": f"The rule {exc}."}}, 422)
    editing = None
    if rule_id is not None:
        editing = await service.get_rule(session, tenant_id=tenant_id, rule_id=rule_id)
    if action in ("preview", "check"):
        results = (
            await _preview(request, member, session, scope, editing, form)
            if action == "preview"
            else await _check(request, member, session, scope, editing, form.text)
        )
        return await again(results, 422 if "errors" in results else 200)
    enable = action == "enable"
    try:
        saved = await _save(request, member, session, scope, editing, form, enable)
    except (InvalidInput, ValidationError) as problem:
        await session.rollback()
        errors = (
            _field_errors(problem)
            if isinstance(problem, InvalidInput)
            else {"text": "; ".join(e["msg"] for e in problem.errors())}
        )
        return await again({"errors": errors}, 422)
    except Conflict as problem:
        await session.rollback()
        return await again({"conflict": {"detail": problem.detail}}, 409)
    return _saved(request, saved, enable)


async def _change(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    rule_id: uuid.UUID,
    revision: str,
    enable: bool,
) -> Response:
    rule = await service.get_rule(session, tenant_id=member.tenant.id, rule_id=rule_id)
    scope = RuleScope.of(rule)
    patch = RulePatch(enabled=enable)
    try:
        saved = await workflow.update(
            session,
            RunServices.of(request.app.state),
            member.principal,
            rule_id,
            patch,
            _revision(revision),
        )
    except (Conflict, InvalidInput) as problem:
        await session.rollback()
        return flash(request, redirect(scope.url), problem.detail, "error")
    if saved.status == "rejected":
        message = f"The rule was not enabled: {saved.check_reason}"
        return flash(request, redirect(scope.url), message, "error")
    message = "Enabled: the rule is live." if enable else "Disabled: the rule no longer runs."
    return flash(request, redirect(scope.url), message)


@router.post("/rules/{rule_id}/enable")
async def enable_rule(
    request: Request,
    member: RulesAuthor,
    session: SessionDep,
    rule_id: uuid.UUID,
    revision: Revision = "",
) -> Response:
    """Make a rule live: it runs the checks first, and stays out with their reason if it fails."""
    return await _change(request, member, session, rule_id, revision, True)


@router.post("/rules/{rule_id}/disable")
async def disable_rule(
    request: Request,
    member: RulesAuthor,
    session: SessionDep,
    rule_id: uuid.UUID,
    revision: Revision = "",
) -> Response:
    """Take a rule out of runs, keeping it to enable again."""
    return await _change(request, member, session, rule_id, revision, False)


@router.post("/rules/{rule_id}/move")
async def move_rule(
    request: Request,
    member: RulesAuthor,
    session: SessionDep,
    rule_id: uuid.UUID,
    direction: Annotated[Literal["up", "down"], Form()] = "up",
) -> Response:
    """One place earlier or later in its scope: the whole scope is renumbered 1, 2, 3…"""
    rule = await service.get_rule(session, tenant_id=member.tenant.id, rule_id=rule_id)
    scope = RuleScope.of(rule)
    ids = [r.id for r in await _scope_rules(session, member.tenant.id, scope)]
    here = ids.index(rule.id)
    there = here - 1 if direction == "up" else here + 1
    if 0 <= there < len(ids):
        ids[here], ids[there] = ids[there], ids[here]
        await service.reorder_rules(
            session,
            tenant_id=member.tenant.id,
            prompt=scope.prompt,
            rule_set=scope.rule_set,
            ids=ids,
            actor=member.actor,
        )
    return flash(request, redirect(scope.url), f"Moved the rule {direction}.")


@router.post("/rules/{rule_id}/delete")
async def delete_rule(
    request: Request,
    member: RulesAuthor,
    session: SessionDep,
    rule_id: uuid.UUID,
    revision: Revision = "",
) -> Response:
    """Delete a rule and its history, if it is still the revision the page showed."""
    rule = await service.get_rule(session, tenant_id=member.tenant.id, rule_id=rule_id)
    scope = RuleScope.of(rule)
    try:
        await service.delete_rule(
            session,
            tenant_id=member.tenant.id,
            rule_id=rule_id,
            actor=member.actor,
            expected_revision=_revision(revision),
        )
    except Conflict as problem:
        await session.rollback()
        return flash(request, redirect(scope.url), problem.detail, "error")
    return flash(request, redirect(scope.url), "Deleted the rule.")
