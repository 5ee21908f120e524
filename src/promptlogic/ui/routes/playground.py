"""The playground: run a version or label of a prompt with variables, from the browser.

The run goes through the same pipeline as `POST /v1/prompts/{name}/run` (limits, rendering,
the provider, checking the output, the record), acting as the signed-in member: the record
says which user ran it. Only members who may run prompts get the page or the endpoint.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Annotated, Any, cast

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import SessionDep
from promptlogic.errors import InvalidInput, NotFound, Problem
from promptlogic.prompts import service as prompt_service
from promptlogic.prompts.cache import Selector
from promptlogic.prompts.models import Prompt, PromptLabel
from promptlogic.prompts.render import DEFAULT_LABEL, load_plan, selector_for
from promptlogic.prompts.schemas import LABEL_PATTERN, NAME_PATTERN
from promptlogic.runs import service as run_service
from promptlogic.runs.pipeline import (
    RunRequest,
    RunServices,
    execute_run,
    prepare_run,
    result_of,
    stream_run,
)
from promptlogic.runs.recorder import RunRecorder
from promptlogic.runs.service import RunRecord
from promptlogic.ui.web import Runner, page

router = APIRouter()

VERSIONS_OFFERED = 200
Name = Annotated[str, Path(pattern=NAME_PATTERN)]
VersionQuery = Annotated[int | None, Query(ge=1, lt=2**31)]
LabelQuery = Annotated[str | None, Query(pattern=LABEL_PATTERN)]


class PlaygroundRun(BaseModel):
    """The playground's run request: the API's body without end user and metadata."""

    model_config = ConfigDict(extra="forbid")

    variables: dict[str, Any] = {}
    label: Annotated[str, StringConstraints(pattern=LABEL_PATTERN)] | None = None
    version: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    stream: bool = False


class _WrittenBeforeAnswering:
    """The recorder as the playground uses it: a run's record is committed before its answer
    (as with `PROMPTLOGIC_RUN_RECORDS=durable`), so the run's page that the answer links to
    finds it at once, whichever worker serves that page. One commit is nothing to a person
    waiting on a model."""

    def __init__(self, recorder: RunRecorder) -> None:
        self._recorder = recorder

    async def persist(self, run: RunRecord) -> None:
        await self._recorder.record_durably(run)

    def record(self, run: RunRecord) -> None:
        """A stream the browser left: no waiting, as in the pipeline."""
        self._recorder.record(run)


def _services(request: Request) -> RunServices:
    services = RunServices.of(request.app.state)
    recorder = cast(RunRecorder, _WrittenBeforeAnswering(services.recorder))
    return dataclasses.replace(services, recorder=recorder)


async def _labels(session: AsyncSession, prompt: Prompt) -> list[PromptLabel]:
    rows = await session.scalars(
        PromptLabel.for_tenant(prompt.tenant_id)
        .where(PromptLabel.prompt_id == prompt.id)
        .order_by(PromptLabel.name)
    )
    return list(rows)


def _default_selector(labels: list[PromptLabel], prompt: Prompt) -> Selector:
    """`production` when it exists (what the API runs by default), else the latest version."""
    if any(label.name == DEFAULT_LABEL for label in labels):
        return ("label", DEFAULT_LABEL)
    return ("version", prompt.latest_version)


async def _provider_in_use(request: Request, tenant_id: uuid.UUID, named: Any) -> dict[str, Any]:
    """The connection a run would use, by name and kind only (never its key), or the reason
    there is none."""
    try:
        connection = await request.app.state.providers.resolve_connection(
            tenant_id, named if isinstance(named, str) else None
        )
    except Problem as problem:
        return {"name": None, "kind": None, "source": None, "problem": problem.detail}
    return {
        "name": connection.name,
        "kind": connection.kind,
        "source": connection.source,
        "problem": None,
    }


async def _earlier_inputs(
    session: AsyncSession, tenant_id: uuid.UUID, name: str, run_id: uuid.UUID | None
) -> tuple[dict[str, Any], int | None]:
    """An earlier run's variables and version, to try again ("Open in the playground")."""
    if run_id is None:
        return {}, None
    try:
        run = await run_service.get_run(session, tenant_id=tenant_id, run_id=run_id)
    except NotFound:
        return {}, None
    if run.prompt != name:
        return {}, None
    return dict(run.inputs), run.version


@router.get("/prompts/{name}/playground")
async def playground(
    request: Request,
    member: Runner,
    session: SessionDep,
    name: Name,
    version: VersionQuery = None,
    label: LabelQuery = None,
    run: Annotated[uuid.UUID | None, Query()] = None,
) -> Response:
    tenant_id = member.tenant.id
    prompt = await prompt_service.get_prompt(session, tenant_id=tenant_id, name=name)
    if prompt.kind != "chat":
        raise InvalidInput.field(
            "name", "a context template runs only through the prompts that include it"
        )
    if not prompt.latest_version:
        raise NotFound(f"Prompt `{name}` has no versions yet: write one before trying it.")
    values, run_version = await _earlier_inputs(session, tenant_id, name, run)
    labels = await _labels(session, prompt)
    versions, _ = await prompt_service.list_versions(
        session, tenant_id=tenant_id, name=name, limit=VERSIONS_OFFERED
    )
    if version is None and label is None and run_version is not None:
        version = run_version
    selector = (
        _default_selector(labels, prompt)
        if version is None and label is None
        else selector_for(label, version)
    )
    plan = await load_plan(
        session,
        renderer=request.app.state.renderer,
        tenant_id=tenant_id,
        name=name,
        selector=selector,
    )
    numbers = [v.number for v in versions]
    if plan.version not in numbers:  # an old version, beyond the ones listed
        numbers.append(plan.version)
    context = {
        "prompt": prompt,
        "plan": plan,
        "selector": {"kind": selector[0], "value": selector[1]},
        "labels": labels,
        "numbers": numbers,
        "schema_json": json.dumps(plan.input_schema),
        "values_json": json.dumps(values),
        "provider": await _provider_in_use(request, tenant_id, plan.model.get("provider")),
    }
    return page(request, "playground.html", context)


@router.post("/prompts/{name}/playground/run", response_model=None)
async def playground_run(
    request: Request, member: Runner, name: Name, body: PlaygroundRun
) -> Response:
    """One run, as the API answers it: JSON, or Server-Sent Events with `"stream": true`
    (`delta`s, then `done` or `error`). Errors before the model is called are problem+json."""
    if body.label is not None and body.version is not None:
        raise InvalidInput.field("body.version", "give `label` or `version`, not both")
    services = _services(request)
    principal = member.principal
    run_request = RunRequest(
        name=name,
        selector=selector_for(body.label, body.version),
        variables=body.variables,
        end_user=None,
        metadata={},
    )
    if body.stream:
        prepared = await prepare_run(services, principal, run_request)
        return StreamingResponse(
            stream_run(services, principal, prepared),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    record = await execute_run(services, principal, run_request)
    return JSONResponse(result_of(record))
