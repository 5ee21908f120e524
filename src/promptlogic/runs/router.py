"""Reading run records (read scope): thin wrappers over the service."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime

from promptlogic.db.engine import SessionDep
from promptlogic.errors import InvalidInput
from promptlogic.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from promptlogic.prompts.render import selector_for
from promptlogic.prompts.schemas import LABEL_PATTERN, NAME_PATTERN
from promptlogic.runs import idempotency, service
from promptlogic.runs.pipeline import (
    RunRequest,
    RunServices,
    execute_run,
    prepare_run,
    result_of,
    stream_run,
)
from promptlogic.runs.schemas import RunOut, RunRequestBody, RunResult
from promptlogic.runs.service import RunFilters
from promptlogic.tenancy.auth import ReadPrincipal, RunPrincipal
from promptlogic.validation import SINGLE_LINE_PATTERN

router = APIRouter(prefix="/v1/runs", tags=["runs"])

Status = Literal["succeeded", "failed", "timed_out", "cancelled"]
EndUser = Annotated[str | None, Query(max_length=300, pattern=SINGLE_LINE_PATTERN)]
Time = Annotated[AwareDatetime | None, Query(description="ISO 8601 with a time zone.")]


@router.get("")
async def list_runs(
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    prompt: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    version: Annotated[int | None, Query(ge=1, lt=2**31)] = None,
    label: Annotated[str | None, Query(pattern=LABEL_PATTERN)] = None,
    status: Status | None = None,
    end_user: EndUser = None,
    created_after: Time = None,
    created_before: Time = None,
    rule: Annotated[uuid.UUID | None, Query(description="runs that applied this rule")] = None,
) -> Page[RunOut]:
    """The tenant's runs, newest first; `created_after` is inclusive, `created_before` not."""
    filters = RunFilters(
        prompt=prompt,
        version=version,
        label=label,
        status=status,
        end_user=end_user,
        created_after=created_after,
        created_before=created_before,
        rule=rule,
    )
    runs, next_cursor = await service.list_runs(
        session, tenant_id=principal.tenant_id, filters=filters, limit=limit, cursor=cursor
    )
    return Page(items=[RunOut.of(run) for run in runs], next_cursor=next_cursor)


@router.get("/{run_id}")
async def get_run(run_id: uuid.UUID, principal: ReadPrincipal, session: SessionDep) -> RunOut:
    """One run: inputs, rendered messages, output, usage, cost, latency and status."""
    run = await service.get_run(session, tenant_id=principal.tenant_id, run_id=run_id)
    return RunOut.of(run)


prompt_runs = APIRouter(prefix="/v1/prompts", tags=["runs"])


@prompt_runs.post("/{name}/run", response_model=RunResult)
async def run_prompt(
    name: Annotated[str, Path(pattern=NAME_PATTERN)],
    body: RunRequestBody,
    principal: RunPrincipal,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RunResult | StreamingResponse | JSONResponse:
    """Run a prompt: render it, call its model, check the output, record the run. With
    `"stream": true`, Server-Sent Events: `delta`s, then `done` (or `error`)."""
    if body.label is not None and body.version is not None:
        raise InvalidInput.field("body.version", "give `label` or `version`, not both")
    state = request.app.state
    services = RunServices.of(state)
    run_request = RunRequest(
        name=name,
        selector=selector_for(body.label, body.version),
        variables=body.variables,
        end_user=body.end_user,
        metadata=body.metadata,
    )
    if body.stream:
        if idempotency_key is not None:
            raise InvalidInput.field(
                "header.Idempotency-Key", "a streamed run cannot be replayed; retry it without"
            )
        prepared = await prepare_run(services, principal, run_request)
        return StreamingResponse(
            stream_run(services, principal, prepared),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    if idempotency_key is None:
        record = await execute_run(services, principal, run_request)
        # `result_of` is plain JSON already: sent as it is, not validated again (hot path).
        return JSONResponse(result_of(record))
    claim = idempotency.Claim(
        state.sessionmaker, principal.tenant_id, idempotency.checked_key(idempotency_key)
    )
    replay = await claim.take(idempotency.fingerprint(name, body.model_dump(mode="json")))
    if replay is not None:
        return JSONResponse(replay, headers={"Idempotent-Replayed": "true"})
    try:
        record = await execute_run(services, principal, run_request)
    except BaseException:
        # A failed run may be retried; shielded so a client hanging up still frees the key.
        await asyncio.shield(claim.release())
        raise
    result = result_of(record)
    await claim.store(result)
    return JSONResponse(result)
