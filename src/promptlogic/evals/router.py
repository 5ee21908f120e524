"""Routes of eval runs: start (202, the work is queued), follow, read results, cancel, compare.

Starting an eval runs prompts, so it needs `run`, and it reads a dataset: `read` too.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import JSONResponse

from promptlogic.db.engine import SessionDep
from promptlogic.evals import service
from promptlogic.evals.eval_schemas import EvalCreate, EvalOut, ResultOut
from promptlogic.evals.models import EvalResult, EvalRun
from promptlogic.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.runs import idempotency
from promptlogic.tenancy.auth import ReadPrincipal, RunReadPrincipal

router = APIRouter(prefix="/v1", tags=["evals"])

FIRST_RESULTS = 100  # results inlined in GET /v1/evals/{id}


EvalPrincipal = RunReadPrincipal  # an eval runs prompts and reads a dataset


def result_out(result: EvalResult) -> ResultOut:
    return ResultOut(
        case_id=result.case_id,
        attempt=result.attempt,
        run_id=result.run_id,
        output=result.output,
        parsed=result.parsed,
        error=result.error,
        score=result.score,
        passed=result.passed,
        scores=result.scores,
        latency_ms=result.latency_ms,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost=None if result.cost is None else float(result.cost),
    )


def eval_out(
    run: EvalRun, results: list[EvalResult] | None = None, cursor: str | None = None
) -> EvalOut:
    return EvalOut(
        id=run.id,
        prompt=run.prompt,
        version=run.version,
        label=run.label,
        dataset=run.dataset_name,
        dataset_revision=run.dataset_revision,
        evaluators=run.evaluators,
        rules=run.rules,
        repeat=run.repeat,
        concurrency=run.concurrency,
        status=run.status,
        progress={"completed": run.completed, "total": run.total},
        summary=run.summary,
        error=run.error,
        created_by=run.principal["name"],
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        results=None if results is None else [result_out(r) for r in results],
        results_next_cursor=cursor,
    )


@router.post("/evals", status_code=status.HTTP_202_ACCEPTED, response_model=EvalOut)
async def create_eval(
    body: EvalCreate,
    principal: EvalPrincipal,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> EvalOut | JSONResponse:
    """Queue an eval of a prompt version (or the version a label points at now) on a
    dataset's current revision; 202 with its id, then follow it with GET. With an
    `Idempotency-Key`, a repeat of the request answers the first eval, never a second one."""
    key = None if idempotency_key is None else idempotency.checked_key(idempotency_key)
    if key is not None:
        request_hash = idempotency.fingerprint("POST /v1/evals", body.model_dump(mode="json"))
        first = await idempotency.take_in(session, principal.tenant_id, key, request_hash)
        if first is not None:
            return JSONResponse(
                first,
                status_code=status.HTTP_202_ACCEPTED,
                headers={"Location": f"/v1/evals/{first['id']}", "Idempotent-Replayed": "true"},
            )
    run = await service.create_eval(session, principal, body)
    created = eval_out(run)
    if key is not None:
        answer = created.model_dump(mode="json")
        await idempotency.store_in(session, principal.tenant_id, key, answer)
    response.headers["Location"] = f"/v1/evals/{run.id}"
    return created


@router.get("/evals")
async def list_evals(
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    prompt: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
) -> Page[EvalOut]:
    """The tenant's evals, newest first; filter `prompt`."""
    runs, next_cursor = await service.list_evals(
        session, tenant_id=principal.tenant_id, limit=limit, cursor=cursor, prompt=prompt
    )
    return Page(items=[eval_out(run) for run in runs], next_cursor=next_cursor)


@router.get("/evals/{eval_id}")
async def get_eval(eval_id: uuid.UUID, principal: ReadPrincipal, session: SessionDep) -> EvalOut:
    """Status, progress, the summary once finished, and the first page of results."""
    run = await service.get_eval(session, tenant_id=principal.tenant_id, eval_id=eval_id)
    results, cursor = await service.list_results(
        session, tenant_id=principal.tenant_id, eval_id=eval_id, limit=FIRST_RESULTS
    )
    return eval_out(run, results, cursor)


@router.get("/evals/{eval_id}/results")
async def list_results(
    eval_id: uuid.UUID,
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ResultOut]:
    """Every per-case result: output, each evaluator's score and reason, tokens, cost."""
    await service.get_eval(session, tenant_id=principal.tenant_id, eval_id=eval_id)
    results, next_cursor = await service.list_results(
        session, tenant_id=principal.tenant_id, eval_id=eval_id, limit=limit, cursor=cursor
    )
    return Page(items=[result_out(r) for r in results], next_cursor=next_cursor)


@router.get("/evals/{eval_id}/compare")
async def compare_evals(
    eval_id: uuid.UUID,
    principal: ReadPrincipal,
    session: SessionDep,
    base: Annotated[uuid.UUID, Query(description="The eval to compare against.")],
) -> dict[str, Any]:
    """This eval against `base`, side by side: per case improved, regressed or the same, and
    the summary deltas."""
    return await service.compare_evals(
        session, tenant_id=principal.tenant_id, base_id=base, head_id=eval_id
    )


@router.post("/evals/{eval_id}:cancel")
async def cancel_eval(eval_id: uuid.UUID, principal: EvalPrincipal, session: SessionDep) -> EvalOut:
    """Stop an eval: cases in flight finish, no new one starts (409 once it has ended)."""
    run = await service.cancel_eval(session, principal=principal, eval_id=eval_id)
    return eval_out(run)
