"""Prompts and context templates: the lists, a prompt's page, a version, labels, history, diff.

Moving a label goes through a confirmation page that shows the diff from the version it holds
now, so nothing is promoted unseen; the move itself is the same service call as the API's.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import SessionDep
from promptlogic.errors import InvalidInput, NotFound, Problem
from promptlogic.evals import datasets, gates
from promptlogic.evals.eval_schemas import GateIn
from promptlogic.evals.models import Dataset, PromptGate
from promptlogic.prompts import labels as label_service
from promptlogic.prompts import service
from promptlogic.prompts.models import Prompt, PromptLabel
from promptlogic.prompts.render import load_plan
from promptlogic.prompts.schemas import LABEL_PATTERN, NAME_PATTERN, PromptCreate
from promptlogic.rules import policy as rules_policy
from promptlogic.rules.policy import RulesPolicy
from promptlogic.tenancy.roles import Scope
from promptlogic.ui.diffview import compare
from promptlogic.ui.routes.evals import evaluator_text, percent
from promptlogic.ui.sessions import SignedIn
from promptlogic.ui.web import Admin, Editor, Reader, flash, page, redirect

router = APIRouter()

PAGE_SIZE = 50
Name = Annotated[str, Path(pattern=NAME_PATTERN)]
Label = Annotated[str, Path(pattern=LABEL_PATTERN)]
Number = Annotated[int, Path(ge=1, lt=2**31)]
Kind = Literal["chat", "context"]
LISTS: dict[Kind, str] = {"chat": "/ui/prompts", "context": "/ui/context-templates"}


async def _list(
    request: Request,
    member: Reader,
    session: SessionDep,
    kind: Kind,
    q: str | None,
    cursor: str | None,
) -> Response:
    prompts, next_cursor = await service.list_prompts(
        session,
        tenant_id=member.tenant.id,
        limit=PAGE_SIZE,
        cursor=cursor,
        kind=kind,
        search=q or None,
    )
    labels = await service.labels_of(
        session, tenant_id=member.tenant.id, prompt_ids=[p.id for p in prompts]
    )
    context = {
        "kind": kind,
        "q": q or "",
        "rows": [(prompt, labels[prompt.id]) for prompt in prompts],
        "next_cursor": next_cursor,
        "list_url": LISTS[kind],
    }
    return page(request, "prompts/list.html", context)


Search = Annotated[str | None, Query(max_length=200)]
Cursor = Annotated[str | None, Query(max_length=500)]


@router.get("/prompts")
async def prompts(
    request: Request, member: Reader, session: SessionDep, q: Search = None, cursor: Cursor = None
) -> Response:
    return await _list(request, member, session, "chat", q, cursor)


@router.get("/context-templates")
async def context_templates(
    request: Request, member: Reader, session: SessionDep, q: Search = None, cursor: Cursor = None
) -> Response:
    return await _list(request, member, session, "context", q, cursor)


@router.get("/prompts-new")
async def new_prompt_form(
    request: Request, member: Editor, kind: Annotated[Kind, Query()] = "chat"
) -> Response:
    values = {"name": "", "kind": kind, "description": "", "protected_labels": "production"}
    return page(request, "prompts/new.html", {"values": values, "errors": {}})


@router.post("/prompts-new")
async def create_prompt(
    request: Request,
    member: Editor,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)],
    kind: Annotated[str, Form(max_length=20)] = "chat",
    description: Annotated[str, Form(max_length=5000)] = "",
    protected_labels: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    values = {
        "name": name,
        "kind": kind,
        "description": description,
        "protected_labels": protected_labels,
    }
    labels = [label.strip() for label in protected_labels.replace(",", " ").split() if label]
    try:
        body = PromptCreate(
            name=name.strip(), kind=kind, description=description, protected_labels=labels
        )
        prompt, _ = await service.create_prompt(
            session,
            tenant_id=member.tenant.id,
            body=body,
            actor=member.actor,
            renderer=request.app.state.renderer,
        )
    except ValidationError as exc:
        errors = {str(e["loc"][0]): e["msg"] for e in exc.errors()}
        return page(
            request, "prompts/new.html", {"values": values, "errors": errors}, status_code=422
        )
    except Problem as exc:
        await session.rollback()
        errors = {"name": exc.detail}
        return page(
            request,
            "prompts/new.html",
            {"values": values, "errors": errors},
            status_code=exc.status,
        )
    response = redirect(f"/ui/prompts/{prompt.name}/edit")
    return flash(request, response, f"Created `{prompt.name}`. Write its first version.")


@router.get("/prompts/{name}")
async def prompt_page(
    request: Request,
    member: Reader,
    session: SessionDep,
    name: Name,
    cursor: Cursor = None,
) -> Response:
    return await _prompt_page(request, member, session, name, cursor)


def _policy_values(policy: RulesPolicy) -> dict[str, Any]:
    """A rules policy as its form's fields."""
    return {
        "allowed": policy.allowed,
        "sets": "\n".join(policy.sets),
        "max_rules": str(policy.max_rules),
        "max_chars": str(policy.max_chars),
        "policy_text": policy.policy_text,
        "checker_prompt": policy.checker.prompt if policy.checker else "",
        "checker_label": policy.checker.label if policy.checker else "production",
        "eval_gate_label": policy.eval_gate.label if policy.eval_gate else "",
    }


async def _prompt_page(
    request: Request,
    member: Reader,
    session: SessionDep,
    name: str,
    cursor: str | None,
    *,
    policy_values: dict[str, Any] | None = None,
    policy_errors: dict[str, str] | None = None,
    gate_values: dict[str, Any] | None = None,
    gate_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The prompt's page; with the rules policy or gate form as typed when it comes back with
    errors."""
    prompt = await service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    policy = rules_policy.policy_of(prompt.rules_policy)
    versions, next_cursor = await service.list_versions(
        session, tenant_id=member.tenant.id, name=name, limit=PAGE_SIZE, cursor=cursor
    )
    labels = await _labels(session, member.tenant.id, prompt)
    gated = await _gates(session, member.tenant.id, prompt)
    on_version: dict[int, list[str]] = {}
    for label in labels:
        for arm in label.split or [{"version": label.version}]:
            on_version.setdefault(arm["version"], []).append(label.label)
    context = {
        "prompt": prompt,
        "versions": versions,
        "next_cursor": next_cursor,
        "labels": labels,
        "on_version": on_version,
        "may_move_protected": member.can(Scope.ADMIN),
        "may_gate": member.can(Scope.ADMIN),
        "list_url": LISTS[prompt.kind],  # type: ignore[index]
        "policy": policy,
        "policy_set": prompt.rules_policy is not None,
        "policy_values": policy_values or _policy_values(policy),
        "policy_errors": policy_errors or {},
        "gates": gated,
        "gate_values": gate_values or GATE_DEFAULTS,
        "gate_errors": gate_errors or {},
        "evaluator_text": evaluator_text,
        "percent": percent,
    }
    return page(request, "prompts/detail.html", context, status_code=status_code)


PolicyField = Annotated[str, Form(max_length=10_000)]
POLICY_FIELDS = {"checker": "checker_prompt"}  # the model's field → the form's, where they differ


def _policy_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        field = None
        if location[0] in ("checker", "eval_gate") and len(location) > 1:
            field = f"{location[0]}_{location[1]}"
        field = field or POLICY_FIELDS.get(location[0], location[0])
        errors.setdefault(field, error["msg"])
    return errors


@router.post("/prompts/{name}/rules-policy")
async def save_rules_policy(
    request: Request,
    member: Editor,
    session: SessionDep,
    name: Name,
    allowed: Annotated[str, Form(max_length=10)] = "",
    sets: PolicyField = "",
    max_rules: Annotated[str, Form(max_length=20)] = "",
    max_chars: Annotated[str, Form(max_length=20)] = "",
    policy_text: PolicyField = "",
    checker_prompt: Annotated[str, Form(max_length=200)] = "",
    checker_label: Annotated[str, Form(max_length=100)] = "",
    eval_gate_label: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Replace the prompt's rules policy (the API's `PUT …/rules-policy`): what tenant users
    may add as rules, the checker that judges them and the eval they pass before going live."""
    prompt = await service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    values: dict[str, Any] = {
        "allowed": bool(allowed),
        "sets": sets,
        "max_rules": max_rules,
        "max_chars": max_chars,
        "policy_text": policy_text,
        "checker_prompt": checker_prompt,
        "checker_label": checker_label,
        "eval_gate_label": eval_gate_label,
    }
    errors: dict[str, str] = {}
    numbers = {}
    for field, typed in (("max_rules", max_rules), ("max_chars", max_chars)):
        raw = typed.strip()
        if raw and not raw.isdigit():
            errors[field] = "must be a whole number"
        elif raw:
            numbers[field] = int(raw)
    checker = None
    if checker_prompt.strip():
        checker = {"prompt": checker_prompt.strip(), "label": checker_label.strip() or "production"}
    body = {
        "allowed": bool(allowed),
        "sets": [line.strip() for line in sets.splitlines() if line.strip()],
        "policy_text": policy_text.strip(),
        "checker": checker,
        "eval_gate": {"label": eval_gate_label.strip()} if eval_gate_label.strip() else None,
        **numbers,
    }
    try:
        policy = RulesPolicy.model_validate(body)
    except ValidationError as exc:
        policy = None
        errors = {**_policy_errors(exc), **errors}
    if checker is not None and "checker_prompt" not in errors:
        try:
            await service.get_prompt(session, tenant_id=member.tenant.id, name=checker["prompt"])
        except NotFound:
            errors["checker_prompt"] = f"there is no prompt named `{checker['prompt']}`"
    if errors or policy is None:
        return await _prompt_page(
            request,
            member,
            session,
            prompt.name,
            None,
            policy_values=values,
            policy_errors=errors,
            status_code=422,
        )
    await rules_policy.set_policy(
        session, member.tenant.id, prompt.name, policy, actor=member.actor
    )
    response = redirect(f"/ui/prompts/{prompt.name}#rules-policy")
    return flash(request, response, "Saved the rules policy.")


GATE_DEFAULTS: dict[str, Any] = {
    "label": "production",
    "dataset": "",
    "evaluators": '[{"type": "exact"}]',
    "min_pass_rate": "1",
    "no_regressions": True,
}


@router.post("/prompts/{name}/gates")
async def save_gate(
    request: Request,
    member: Admin,
    session: SessionDep,
    name: Name,
    label: Annotated[str, Form(max_length=100)] = "",
    dataset: Annotated[str, Form(max_length=200)] = "",
    evaluators: Annotated[str, Form(max_length=20_000)] = "",
    min_pass_rate: Annotated[str, Form(max_length=20)] = "",
    no_regressions: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Gate a label, or replace its gate (the API's `PUT …/gates/{label}`): it then moves only
    to versions with a passing eval. Admins only, as protected labels are."""
    prompt = await service.lock_prompt(session, tenant_id=member.tenant.id, name=name)
    values = {
        "label": label,
        "dataset": dataset,
        "evaluators": evaluators,
        "min_pass_rate": min_pass_rate,
        "no_regressions": bool(no_regressions),
    }
    errors: dict[str, str] = {}
    label = label.strip()
    if not re.fullmatch(LABEL_PATTERN, label):
        errors["label"] = "a label: lowercase letters, digits, `.`, `_` and `-`, at most 50"
    specs: Any = None
    try:
        specs = json.loads(evaluators)
    except ValueError:
        errors["evaluators"] = 'is not JSON: a list of evaluators, e.g. [{"type": "exact"}]'
    rate: Any = min_pass_rate.strip() or "1"
    try:
        rate = float(rate)
    except ValueError:
        errors["min_pass_rate"] = "must be a number from 0 to 1"  # noqa: S105 - not a secret
    body = {
        "dataset": dataset.strip(),
        "evaluators": specs,
        "min_pass_rate": rate,
        "no_regressions": bool(no_regressions),
    }
    gate_in = None
    try:
        gate_in = GateIn.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors():
            where = " ".join(str(part) for part in error["loc"][1:])
            message = f"{where}: {error['msg']}" if where else error["msg"]
            errors.setdefault(str(error["loc"][0]), message)
    found = None
    if "dataset" not in errors:
        try:
            found = await datasets.get_dataset(
                session, tenant_id=member.tenant.id, name=body["dataset"]
            )
        except NotFound:
            errors["dataset"] = f"there is no dataset named `{body['dataset']}`"
    if errors or gate_in is None or found is None:
        return await _prompt_page(
            request,
            member,
            session,
            prompt.name,
            None,
            gate_values=values,
            gate_errors=errors,
            status_code=422,
        )
    await gates.put_gate(
        session,
        prompt=prompt,
        label=label,
        dataset=found,
        body=gate_in,
        actor=member.actor,
    )
    response = redirect(f"/ui/prompts/{prompt.name}#gate-{label}")
    return flash(request, response, f"Gated {label}: it moves only to versions that pass.")


@router.post("/prompts/{name}/gates/{label}/delete")
async def remove_gate(
    request: Request, member: Admin, session: SessionDep, name: Name, label: Label
) -> Response:
    """Take a label's gate away: it moves freely again (protection aside)."""
    prompt = await service.lock_prompt(session, tenant_id=member.tenant.id, name=name)
    await gates.delete_gate(session, prompt=prompt, label=label, actor=member.actor)
    response = redirect(f"/ui/prompts/{prompt.name}#gates-heading")
    return flash(request, response, f"Removed the gate of {label}.")


async def _labels(
    session: AsyncSession, tenant_id: uuid.UUID, prompt: Prompt
) -> list[label_service.LabelState]:
    """The prompt's labels, in one query."""
    rows = await session.scalars(
        PromptLabel.for_tenant(tenant_id)
        .where(PromptLabel.prompt_id == prompt.id)
        .order_by(PromptLabel.name)
    )
    return [
        label_service.LabelState(
            prompt.name,
            row.name,
            row.version,
            row.name in prompt.protected_labels,
            row.updated_at,
            row.updated_by,
            row.split,
        )
        for row in rows
    ]


async def _gates(
    session: AsyncSession, tenant_id: uuid.UUID, prompt: Prompt
) -> dict[str, tuple[PromptGate, Dataset]]:
    """The prompt's promotion gates by label, each with its dataset, in one query."""
    rows = await session.execute(
        PromptGate.for_tenant(tenant_id, PromptGate, Dataset)
        .join(Dataset, Dataset.id == PromptGate.dataset_id)
        .where(PromptGate.prompt_id == prompt.id)
        .order_by(PromptGate.label)
    )
    return {gate.label: (gate, dataset) for gate, dataset in rows}


@router.get("/prompts/{name}/versions/{number}")
async def version_page(
    request: Request, member: Reader, session: SessionDep, name: Name, number: Number
) -> Response:
    prompt = await service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    version = await service.version_row(session, prompt, number)
    includes, include_error = [], None
    if prompt.kind == "chat":
        try:
            plan = await load_plan(
                session,
                renderer=request.app.state.renderer,
                tenant_id=member.tenant.id,
                name=name,
                selector=("version", number),
            )
            includes = list(plan.versions_used[1:])
        except Problem as exc:
            include_error = exc.detail
    context = {
        "prompt": prompt,
        "version": version,
        "includes": includes,
        "include_error": include_error,
    }
    return page(request, "prompts/version.html", context)


@router.get("/prompts/{name}/diff")
async def diff_page(
    request: Request,
    member: Reader,
    session: SessionDep,
    name: Name,
    from_version: Annotated[int | None, Query(alias="from", ge=1, lt=2**31)] = None,
    to_version: Annotated[int | None, Query(alias="to", ge=1, lt=2**31)] = None,
    view: Literal["side", "unified"] = "side",
) -> Response:
    prompt = await service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    if not prompt.latest_version:
        raise NotFound(f"Prompt `{name}` has no versions yet.")
    new_number = to_version or prompt.latest_version
    old_number = from_version or max(1, new_number - 1)
    old = await service.version_row(session, prompt, old_number)
    new = await service.version_row(session, prompt, new_number)
    context = {
        "prompt": prompt,
        "old": old,
        "new": new,
        "parts": compare(old, new),
        "view": view,
        "numbers": range(prompt.latest_version, 0, -1),
    }
    return page(request, "prompts/diff.html", context)


def _start_eval_url(prompt: Prompt, gate: PromptGate, dataset: Dataset, version: int) -> str:
    """The eval form, filled in with what a gate needs of `version`."""
    query = {
        "prompt": prompt.name,
        "target": str(version),
        "dataset": dataset.name,
        "evaluators": json.dumps(gate.evaluators, ensure_ascii=False),
    }
    return f"/ui/evals-new?{urlencode(query)}"


async def _gate_check(
    session: AsyncSession,
    prompt: Prompt,
    label: str,
    target: int,
    state: label_service.LabelState | None,
) -> dict[str, Any] | None:
    """The label's gate and what it says of moving the label to `target`: each check that
    fails (as the move would answer it), and the evals it counts; None without a gate."""
    gate = await gates.find_gate(
        session, tenant_id=prompt.tenant_id, prompt_id=prompt.id, label=label
    )
    if gate is None:
        return None
    dataset = await gates.dataset_of(session, gate)
    current = state.version if state is not None else None
    moving = state is None or state.version != target or bool(state.split)
    failures = await gates.failures(session, gate, prompt, [target], current) if moving else []
    versions = [target]
    if gate.no_regressions and current is not None and current != target:
        versions.insert(0, current)  # the baseline the target must not regress against
    evals = [
        (version, await gates.latest_eval(session, gate, prompt, dataset, version))
        for version in versions
    ]
    return {
        "gate": gate,
        "dataset": dataset,
        "current": current,
        "moving": moving,
        "failures": failures,
        "evals": evals,
        "start_urls": {
            version: _start_eval_url(prompt, gate, dataset, version) for version in versions
        },
    }


async def _move_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    name: str,
    label: str,
    version: int,
    rollback: bool,
    *,
    refused: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    """The confirmation: where the label is, where it would go, the diff between them, and the
    label's gate with whether it lets the move through (or, after a refused move, why not)."""
    prompt = await service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    target = await service.version_row(session, prompt, version)
    current = None
    try:
        state = await label_service.get_label(
            session, tenant_id=member.tenant.id, name=name, label=label
        )
        current = await service.version_row(session, prompt, state.version)
    except NotFound:
        state = None
    protected = label in prompt.protected_labels
    context = {
        "prompt": prompt,
        "label": label,
        "state": state,
        "current": current,
        "target": target,
        "parts": compare(current, target) if current is not None else [],
        "protected": protected,
        "allowed": not protected or member.can(Scope.ADMIN),
        "rollback": rollback,
        "gate": await _gate_check(session, prompt, label, target.number, state),
        "refused": refused,
        "evaluator_text": evaluator_text,
        "percent": percent,
    }
    return page(request, "prompts/move.html", context, status_code=status_code)


@router.get("/prompts/{name}/labels/{label}/move")
async def confirm_move(
    request: Request,
    member: Editor,
    session: SessionDep,
    name: Name,
    label: Label,
    version: Annotated[int, Query(ge=1, lt=2**31)],
    rollback: bool = False,
) -> Response:
    """The confirmation of a move, with the diff and the label's gate."""
    return await _move_page(request, member, session, name, label, version, rollback)


@router.post("/prompts/{name}/labels/{label}/move")
async def move(
    request: Request,
    member: Editor,
    session: SessionDep,
    name: Name,
    label: Label,
    version: Annotated[int, Form(ge=1, lt=2**31)],
    expected: Annotated[str, Form(max_length=20)] = "",
    rollback: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Move the label, if it still points where the page showed and its gate lets it; a gate's
    refusal shows the confirmation again with what failed."""
    try:
        expected_version = int(expected) if expected else None
    except ValueError:
        raise InvalidInput.field("expected", "must be a version number") from None
    try:
        await label_service.move_label(
            session,
            tenant_id=member.tenant.id,
            name=name,
            label=label,
            version=version,
            expected_version=expected_version,
            actor=member.actor,
            may_move_protected=member.can(Scope.ADMIN),
        )
    except gates.GateRefused as refusal:
        await session.rollback()
        return await _move_page(
            request,
            member,
            session,
            name,
            label,
            version,
            bool(rollback),
            refused=refusal.errors or [{"field": "gate", "message": refusal.detail}],
            status_code=refusal.status,
        )
    response = redirect(f"/ui/prompts/{name}")
    return flash(request, response, f"`{label}` now points at version {version}.")


@router.get("/prompts/{name}/label")
async def label_version(
    member: Editor,
    session: SessionDep,
    name: Name,
    label: Annotated[str, Query(pattern=LABEL_PATTERN)],
    version: Annotated[int, Query(ge=1, lt=2**31)],
) -> Response:
    """The versions table's "Label…" form: on to the move confirmation for that label."""
    await service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    return redirect(f"/ui/prompts/{name}/labels/{label}/move?version={version}")


@router.get("/prompts/{name}/labels/{label}/rollback")
async def rollback(
    request: Request, member: Editor, session: SessionDep, name: Name, label: Label
) -> Response:
    """Back to the version the label held before its last move: confirm like any move."""
    moves, _ = await label_service.label_history(
        session, tenant_id=member.tenant.id, name=name, label=label, limit=1
    )
    if not moves or moves[0].from_version is None:
        response = redirect(f"/ui/prompts/{name}")
        return flash(request, response, f"`{label}` has no earlier version to go back to.", "error")
    target = f"/ui/prompts/{name}/labels/{label}/move?version={moves[0].from_version}&rollback=1"
    return redirect(target)


@router.get("/prompts/{name}/labels/{label}/history")
async def history(
    request: Request,
    member: Reader,
    session: SessionDep,
    name: Name,
    label: Label,
    cursor: Cursor = None,
) -> Response:
    prompt = await service.get_prompt(session, tenant_id=member.tenant.id, name=name)
    moves, next_cursor = await label_service.label_history(
        session, tenant_id=member.tenant.id, name=name, label=label, limit=PAGE_SIZE, cursor=cursor
    )
    context = {"prompt": prompt, "label": label, "moves": moves, "next_cursor": next_cursor}
    return page(request, "prompts/history.html", context)
