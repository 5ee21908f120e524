"""Eval runs: starting one (what it runs on is fixed then), reading its progress and results,
cancelling it, and comparing two. The work itself is `evals.runner`, on the job queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.errors import Conflict, InvalidInput, NotFound
from promptlogic.evals import datasets
from promptlogic.evals.eval_schemas import EvalCreate
from promptlogic.evals.models import EvalResult, EvalRun
from promptlogic.evals.outcomes import outcomes_of
from promptlogic.evals.runner import FINISHED, EvalJob, enqueue_eval, principal_record
from promptlogic.evals.summary import compare
from promptlogic.pagination import decode_cursor, paginate
from promptlogic.prompts.resolution import resolve_prompt_version
from promptlogic.rules.preview import draft_entries, needs_scope
from promptlogic.tenancy.principal import Principal

MAX_CASE_RUNS = 100_000  # cases times repeats of one eval


async def _draft(
    session: AsyncSession, principal: Principal, body: EvalCreate, bindings: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The draft rules as the runner lays them over the live ones (checked as a preview)."""
    if body.rules is None:
        return None
    needs_scope(tuple(bindings), body.prompt, body.rules.set, where="body.rules")
    draft = await draft_entries(
        session,
        principal.tenant_id,
        prompt=body.prompt,
        rule_set=body.rules.set,
        changes=body.rules.changes,
        field="body.rules.changes",
    )
    scope = ["set", body.rules.set] if body.rules.set is not None else ["prompt", body.prompt]
    return {"scope": scope, "draft": draft}


async def create_eval(session: AsyncSession, principal: Principal, body: EvalCreate) -> EvalRun:
    """Fix what the eval runs on (the version a label points at now, the dataset's current
    revision) and queue it; 404 for an unknown prompt, version, label or dataset."""
    label = None if body.version is not None else (body.label or "production")
    prompt, version = await resolve_prompt_version(
        session, tenant_id=principal.tenant_id, name=body.prompt, label=label, number=body.version
    )
    if prompt.kind != "chat":
        raise InvalidInput.field("body.prompt", "a context template cannot be run on its own")
    dataset = await datasets.get_dataset(session, tenant_id=principal.tenant_id, name=body.dataset)
    cases = await datasets.count_cases(
        session, tenant_id=principal.tenant_id, dataset_id=dataset.id, revision=dataset.revision
    )
    if cases == 0:
        raise InvalidInput.field("body.dataset", f"dataset `{dataset.name}` has no cases")
    if cases * body.repeat > MAX_CASE_RUNS:
        raise InvalidInput.field(
            "body.repeat",
            f"{cases} cases repeated {body.repeat} times is over {MAX_CASE_RUNS:,} runs",
        )
    run = EvalRun(
        id=uuid.uuid4(),
        tenant_id=principal.tenant_id,
        prompt=prompt.name,
        version=version.number,
        label=label,
        dataset_id=dataset.id,
        dataset_name=dataset.name,
        dataset_revision=dataset.revision,
        evaluators=[spec.model_dump(mode="json") for spec in body.evaluators],
        rules=await _draft(session, principal, body, list(version.context or [])),
        repeat=body.repeat,
        concurrency=body.concurrency,
        status="queued",
        total=cases * body.repeat,
        completed=0,
        principal=principal_record(principal),
    )
    session.add(run)
    await session.flush()
    await session.refresh(run, ["created_at"])
    await enqueue_eval(session, EvalJob(principal.tenant_id, run.id))
    await audit.record(
        session,
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        action="eval.create",
        target_type="eval",
        target_id=str(run.id),
        after={
            "prompt": run.prompt,
            "version": run.version,
            "dataset": run.dataset_name,
            "dataset_revision": run.dataset_revision,
            "total": run.total,
        },
    )
    return run


async def get_eval(session: AsyncSession, *, tenant_id: uuid.UUID, eval_id: uuid.UUID) -> EvalRun:
    found = await session.scalar(EvalRun.for_tenant(tenant_id).where(EvalRun.id == eval_id))
    if found is None:
        raise NotFound(f"No eval `{eval_id}`.")
    return found


async def list_evals(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    limit: int,
    cursor: str | None = None,
    prompt: str | None = None,
) -> tuple[list[EvalRun], str | None]:
    """Newest first."""
    statement = (
        EvalRun.for_tenant(tenant_id)
        .order_by(EvalRun.created_at.desc(), EvalRun.id.desc())
        .limit(limit + 1)
    )
    if prompt is not None:
        statement = statement.where(EvalRun.prompt == prompt)
    if cursor is not None:
        created_at, eval_id = decode_cursor(cursor, str, str)
        try:
            after = (datetime.fromisoformat(created_at), uuid.UUID(eval_id))
        except ValueError:
            raise InvalidInput.field("query.cursor", "is not a cursor of this list") from None
        statement = statement.where(tuple_(EvalRun.created_at, EvalRun.id) < after)
    found = list((await session.scalars(statement)).all())
    return paginate(found, limit, lambda run: (run.created_at.isoformat(), str(run.id)))


async def list_results(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    eval_id: uuid.UUID,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[EvalResult], str | None]:
    """An eval's results in the order they were stored."""
    statement = (
        EvalResult.for_tenant(tenant_id)
        .where(EvalResult.eval_id == eval_id)
        .order_by(EvalResult.id)
        .limit(limit + 1)
    )
    if cursor is not None:
        (after,) = decode_cursor(cursor, int)
        statement = statement.where(EvalResult.id > after)
    found = list((await session.scalars(statement)).all())
    return paginate(found, limit, lambda result: (result.id,))


async def cancel_eval(
    session: AsyncSession, *, principal: Principal, eval_id: uuid.UUID
) -> EvalRun:
    """Stop an eval: the cases in flight finish, no new one starts; 409 once it has ended."""
    run = await session.scalar(
        EvalRun.for_tenant(principal.tenant_id).where(EvalRun.id == eval_id).with_for_update()
    )
    if run is None:
        raise NotFound(f"No eval `{eval_id}`.")
    if run.status in FINISHED:
        raise Conflict(f"Eval `{eval_id}` has already ended ({run.status}).")
    run.status = "cancelled"
    run.error = f"cancelled by {principal.key_name}"
    if run.started_at is None:
        run.finished_at = datetime.now(UTC)
    await audit.record(
        session,
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        action="eval.cancel",
        target_type="eval",
        target_id=str(eval_id),
    )
    return run


async def compare_evals(
    session: AsyncSession, *, tenant_id: uuid.UUID, base_id: uuid.UUID, head_id: uuid.UUID
) -> dict[str, Any]:
    """`head` against `base`, case by case, with the summary deltas."""
    base = await get_eval(session, tenant_id=tenant_id, eval_id=base_id)
    head = await get_eval(session, tenant_id=tenant_id, eval_id=head_id)
    compared = compare(
        await outcomes_of(session, tenant_id, base.id),
        await outcomes_of(session, tenant_id, head.id),
    )
    deltas = {}
    for figure in ("pass_rate", "mean_score", "cost"):
        before = (base.summary or {}).get(figure)
        after = (head.summary or {}).get(figure)
        deltas[figure] = None if before is None or after is None else round(after - before, 6)
    return {
        "base": {"id": str(base.id), "version": base.version, "summary": base.summary},
        "head": {"id": str(head.id), "version": head.version, "summary": head.summary},
        "deltas": deltas,
        "same_dataset": (base.dataset_id, base.dataset_revision)
        == (head.dataset_id, head.dataset_revision),
        **compared,
    }
