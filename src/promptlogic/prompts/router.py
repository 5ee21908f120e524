"""Routes of prompts: thin wrappers over the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from promptlogic.db.engine import SessionDep
from promptlogic.errors import InvalidInput, Problem
from promptlogic.etags import number_in
from promptlogic.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from promptlogic.prompts import diff as diffing
from promptlogic.prompts import labels, service
from promptlogic.prompts.models import LabelMove, Prompt, PromptVersion
from promptlogic.prompts.render import render_prompt, selector_for
from promptlogic.prompts.schemas import (
    LABEL_PATTERN,
    MAX_VERSION,
    NAME_PATTERN,
    DiffOut,
    Kind,
    LabelMoveOut,
    LabelMoveRequest,
    LabelOut,
    PromptCreate,
    PromptCreated,
    PromptOut,
    PromptUpdate,
    RenderOut,
    RenderRequest,
    VersionCreate,
    VersionOut,
)
from promptlogic.tenancy.auth import ReadPrincipal, RunPrincipal, WritePrincipal
from promptlogic.tenancy.roles import Scope
from promptlogic.validation import SINGLE_LINE_PATTERN

router = APIRouter(prefix="/v1/prompts", tags=["prompts"])

NamePath = Annotated[str, Path(pattern=NAME_PATTERN, description="The prompt's name.")]
LabelPath = Annotated[str, Path(pattern=LABEL_PATTERN, description="A label, or `latest`.")]
NumberPath = Annotated[int, Path(ge=1, le=MAX_VERSION, description="A version number.")]


class PreconditionRequired(Problem):
    status, slug = 428, "precondition-required"


def prompt_out(prompt: Prompt, labels: dict[str, int]) -> PromptOut:
    return PromptOut(
        id=prompt.id,
        name=prompt.name,
        kind=prompt.kind,  # type: ignore[arg-type]
        description=prompt.description,
        archived=prompt.archived,
        protected_labels=prompt.protected_labels,
        latest_version=prompt.latest_version or None,
        labels=labels,
        created_at=prompt.created_at,
        updated_at=prompt.updated_at,
    )


def version_out(version: PromptVersion) -> VersionOut:
    return VersionOut.model_validate(
        {
            **{field: getattr(version, field) for field in service.CONTENT_FIELDS},
            "version": version.number,
            "commit_message": version.commit_message,
            "author": version.author,
            "content_hash": version.content_hash,
            "created_at": version.created_at,
        }
    )


def move_out(move: LabelMove) -> LabelMoveOut:
    return LabelMoveOut(
        id=move.id,
        label=move.label,
        from_version=move.from_version,
        to_version=move.to_version,
        to_versions=move.to_split,
        actor=move.actor,
        created_at=move.created_at,
    )


async def _prompt_out(session: SessionDep, prompt: Prompt) -> PromptOut:
    labels = await service.labels_of(session, tenant_id=prompt.tenant_id, prompt_ids=[prompt.id])
    return prompt_out(prompt, labels[prompt.id])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_prompt(
    body: PromptCreate, principal: WritePrincipal, session: SessionDep, request: Request
) -> PromptCreated:
    """Create a prompt, with its first version when `version` is given."""
    prompt, version = await service.create_prompt(
        session,
        tenant_id=principal.tenant_id,
        body=body,
        actor=principal.actor,
        renderer=request.app.state.renderer,
    )
    out = await _prompt_out(session, prompt)
    return PromptCreated(
        **out.model_dump(), version=version_out(version) if version is not None else None
    )


@router.get("")
async def list_prompts(
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    kind: Kind | None = None,
    q: Annotated[str | None, Query(max_length=100, pattern=SINGLE_LINE_PATTERN)] = None,
    include_archived: bool = False,
) -> Page[PromptOut]:
    """The tenant's prompts by name, with their labels and latest version number."""
    prompts, next_cursor = await service.list_prompts(
        session,
        tenant_id=principal.tenant_id,
        limit=limit,
        cursor=cursor,
        kind=kind,
        search=q,
        include_archived=include_archived,
    )
    labels = await service.labels_of(
        session, tenant_id=principal.tenant_id, prompt_ids=[p.id for p in prompts]
    )
    return Page(items=[prompt_out(p, labels[p.id]) for p in prompts], next_cursor=next_cursor)


@router.get("/{name}")
async def get_prompt(name: NamePath, principal: ReadPrincipal, session: SessionDep) -> PromptOut:
    """One prompt with its labels."""
    prompt = await service.get_prompt(session, tenant_id=principal.tenant_id, name=name)
    return await _prompt_out(session, prompt)


@router.patch("/{name}")
async def update_prompt(
    name: NamePath, body: PromptUpdate, principal: WritePrincipal, session: SessionDep
) -> PromptOut:
    """Change a prompt's description, protected labels or archived flag."""
    prompt = await service.update_prompt(
        session,
        tenant_id=principal.tenant_id,
        name=name,
        body=body,
        actor=principal.actor,
        may_move_protected=principal.can(Scope.ADMIN),
    )
    return await _prompt_out(session, prompt)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def archive_prompt(name: NamePath, principal: WritePrincipal, session: SessionDep) -> None:
    """Archive a prompt: hidden from lists, versions and history kept."""
    await service.update_prompt(
        session,
        tenant_id=principal.tenant_id,
        name=name,
        body=PromptUpdate(archived=True),
        actor=principal.actor,
        may_move_protected=principal.can(Scope.ADMIN),
    )


@router.post("/{name}/versions", status_code=status.HTTP_201_CREATED)
async def create_version(
    name: NamePath,
    body: VersionCreate,
    principal: WritePrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
) -> VersionOut:
    """Save a new version (201); identical content returns the latest version (200)."""
    saved = await service.create_version(
        session,
        tenant_id=principal.tenant_id,
        name=name,
        body=body,
        actor=principal.actor,
        renderer=request.app.state.renderer,
    )
    if not saved.created:
        response.status_code = status.HTTP_200_OK
    return version_out(saved.version)


@router.get("/{name}/versions")
async def list_versions(
    name: NamePath,
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[VersionOut]:
    """A prompt's versions, newest first."""
    versions, next_cursor = await service.list_versions(
        session, tenant_id=principal.tenant_id, name=name, limit=limit, cursor=cursor
    )
    return Page(items=[version_out(v) for v in versions], next_cursor=next_cursor)


@router.get("/{name}/versions/{number}")
async def get_version(
    name: NamePath, number: NumberPath, principal: ReadPrincipal, session: SessionDep
) -> VersionOut:
    """One version of a prompt."""
    version = await service.get_version(
        session, tenant_id=principal.tenant_id, name=name, number=number
    )
    return version_out(version)


@router.get("/{name}/labels/{label}")
async def get_label(
    name: NamePath,
    label: LabelPath,
    principal: ReadPrincipal,
    session: SessionDep,
    response: Response,
) -> LabelOut:
    """Where a label points; its ETag is the version, for If-Match on the next move."""
    state = await labels.get_label(session, tenant_id=principal.tenant_id, name=name, label=label)
    response.headers["ETag"] = f'"{state.version}"'
    return _label_out(state)


def _label_out(state: labels.LabelState) -> LabelOut:
    return LabelOut(
        prompt=state.prompt,
        label=state.label,
        version=state.version,
        versions=state.split,
        protected=state.protected,
        updated_at=state.updated_at,
        updated_by=state.updated_by,
    )


def _expected_from_if_match(if_match: str | None) -> int | None:
    assert if_match is not None
    return number_in(if_match, header="If-Match", what="the label's", star=False)


@router.put("/{name}/labels/{label}")
async def move_label(
    name: NamePath,
    label: LabelPath,
    body: LabelMoveRequest,
    principal: WritePrincipal,
    session: SessionDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=100)] = None,
) -> LabelOut:
    """Point a label at a version (deploy, or roll back by moving it back); 409 if stale."""
    if "expected_version" in body.model_fields_set:
        expected = body.expected_version
    elif if_match is not None:
        expected = _expected_from_if_match(if_match)
    else:
        raise PreconditionRequired(
            "Say which version the label pointed at when you last saw it: "
            "`expected_version` in the body (null for a new label) or an If-Match header."
        )
    if (body.version is None) == (body.versions is None):
        raise InvalidInput.field("body.version", "give `version` or `versions`, one of them")
    split = None
    if body.versions is not None:
        split = [arm.model_dump() for arm in body.versions]
        if len({arm["version"] for arm in split}) != len(split):
            raise InvalidInput.field("body.versions", "each version may appear once")
    state = await labels.move_label(
        session,
        tenant_id=principal.tenant_id,
        name=name,
        label=label,
        version=body.version,
        split=split,
        expected_version=expected,
        actor=principal.actor,
        may_move_protected=principal.can(Scope.ADMIN),
    )
    response.headers["ETag"] = f'"{state.version}"'
    return _label_out(state)


@router.get("/{name}/labels/{label}/history")
async def label_history(
    name: NamePath,
    label: LabelPath,
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[LabelMoveOut]:
    """Every move of a label, newest first: who, when, from, to."""
    moves, next_cursor = await labels.label_history(
        session, tenant_id=principal.tenant_id, name=name, label=label, limit=limit, cursor=cursor
    )
    return Page(items=[move_out(m) for m in moves], next_cursor=next_cursor)


@router.get("/{name}/diff", response_model_by_alias=True)
async def diff_versions(
    name: NamePath,
    principal: ReadPrincipal,
    session: SessionDep,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=MAX_VERSION)],
) -> DiffOut:
    """A unified diff per message and a field-by-field diff of the settings."""
    old = await service.get_version(
        session, tenant_id=principal.tenant_id, name=name, number=from_version
    )
    new = await service.get_version(
        session, tenant_id=principal.tenant_id, name=name, number=to_version
    )
    # Diffing is CPU work on up to megabytes of text: off the event loop.
    return await run_in_threadpool(diffing.diff_versions, name, old, new)


@router.post("/{name}/render")
async def render(
    name: NamePath,
    body: RenderRequest,
    principal: RunPrincipal,
    request: Request,
) -> RenderOut:
    """Render a version's messages with variables, and report every version used."""
    if body.label is not None and body.version is not None:
        raise InvalidInput.field("body.version", "give `label` or `version`, not both")
    rendered = await render_prompt(
        request.app.state.sessionmaker,
        cache=request.app.state.plan_cache,
        renderer=request.app.state.renderer,
        tenant_id=principal.tenant_id,
        name=name,
        selector=selector_for(body.label, body.version),
        variables=body.variables,
        binder=request.app.state.binder,
    )
    plan = rendered.plan
    return RenderOut.model_validate(
        {
            "messages": rendered.messages,
            "prompt": plan.prompt,
            "version": plan.version,
            "label": plan.label,
            "versions_used": [
                {"prompt": u.prompt, "version": u.version} for u in plan.versions_used
            ],
            "bound": rendered.bound,
        }
    )
