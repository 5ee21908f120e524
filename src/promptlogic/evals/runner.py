"""Running an eval: every case of its dataset revision, `repeat` times, through the normal run
path, scored by its evaluators, a few cases at a time.

Each result is written on its own as soon as it is scored (one row per case and attempt, with a
unique key), and the eval's `completed` counter with it, so a worker killed mid-run loses at most
the cases in flight: the job is picked up again (PgQueuer's heartbeat) and `run_eval` skips
what is stored. Runs are made in the name of whoever started the eval, count against the
tenant's usage limits, and wait when the per-minute limit is reached (a spending cap ends the
eval instead).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import commit
from promptlogic.errors import Problem
from promptlogic.evals.evaluators import (
    CaseResult,
    CaseScore,
    Judge,
    JudgeSpec,
    case_of_run,
    make_validate,
    score_case,
)
from promptlogic.evals.judge import make_judge
from promptlogic.evals.models import DatasetCase, EvalResult, EvalRun
from promptlogic.evals.outcomes import outcomes_of
from promptlogic.evals.specs import EvaluatorSpecs
from promptlogic.evals.summary import summarize
from promptlogic.jobs.queue import queries_on
from promptlogic.rules.preview import with_draft
from promptlogic.runs.pipeline import RUN_ID_HEADER, RunRequest, RunServices, execute_run
from promptlogic.tenancy.models import ApiKey, Membership
from promptlogic.tenancy.principal import Principal
from promptlogic.tenancy.roles import Scope
from promptlogic.usage.limiter import UsageLimited

log = logging.getLogger(__name__)

EVAL = "run_eval"  # the job queue's entrypoint of evals
FINISHED = ("succeeded", "failed", "cancelled")
LONGEST_WAIT_SECONDS = 65.0  # a minute's rate limit is waited out; a monthly cap is not
SPECS = TypeAdapter(EvaluatorSpecs)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EvalJob:
    tenant_id: uuid.UUID
    eval_id: uuid.UUID

    @property
    def dedupe_key(self) -> str:
        return f"eval:{self.eval_id}"

    def encode(self) -> bytes:
        return json.dumps({"tenant_id": str(self.tenant_id), "eval_id": str(self.eval_id)}).encode()

    @classmethod
    def decode(cls, payload: bytes | None) -> EvalJob:
        data = json.loads(payload or b"{}")
        return cls(uuid.UUID(data["tenant_id"]), uuid.UUID(data["eval_id"]))


async def enqueue_eval(session: AsyncSession, job: EvalJob) -> None:
    """Enqueue in `session`'s transaction: the job exists if and only if the eval does."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    await queries_on(raw.driver_connection).enqueue(
        [EVAL], [job.encode()], [0], dedupe_key=[job.dedupe_key], on_conflict="skip"
    )


@dataclass(frozen=True, slots=True)
class _Case:
    case_id: uuid.UUID
    inputs: dict[str, Any]
    expected: Any


class _Stop(Exception):
    """The eval ends early: cancelled, or a limit that waiting does not lift."""

    def __init__(self, status: str, reason: str | None = None) -> None:
        super().__init__(reason or status)
        self.status = status
        self.reason = reason


def principal_record(principal: Principal) -> dict[str, str]:
    """Who starts an eval, as the eval keeps it (its runs are made in their name)."""
    return {"kind": principal.kind, "id": str(principal.key_id), "name": principal.key_name}


def principal_of(run: EvalRun) -> Principal:
    """Who the eval's runs belong to: whoever started it, allowed to run prompts only."""
    return Principal(
        tenant_id=run.tenant_id,
        tenant_slug="",
        tenant_name="",
        key_id=uuid.UUID(run.principal["id"]),
        key_name=run.principal["name"],
        scopes=frozenset({Scope.RUN}),
        kind=run.principal["kind"],  # type: ignore[arg-type]
    )


async def _starter_gone(session: AsyncSession, run: EvalRun) -> str | None:
    """Why whoever started the eval may no longer run prompts (its API key revoked or expired,
    the member removed from the tenant), or None: an eval does not outlive its author's
    access."""
    who = uuid.UUID(run.principal["id"])
    if run.principal["kind"] == "user":
        member = await session.scalar(
            Membership.for_tenant(run.tenant_id, Membership.id).where(Membership.user_id == who)
        )
        return None if member is not None else "its author is no longer a member of the tenant"
    key = await session.scalar(ApiKey.for_tenant(run.tenant_id).where(ApiKey.id == who))
    if key is None or key.revoked_at is not None:
        return "the API key that started it was revoked"
    if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
        return "the API key that started it has expired"
    return None


async def _begin(
    services: RunServices, tenant_id: uuid.UUID, eval_id: uuid.UUID
) -> tuple[EvalRun, list[_Case], set[tuple[uuid.UUID, int]]] | None:
    """Mark the eval running and read what it needs: its cases, and the results it has."""
    async with services.sessions() as session:
        run = await session.scalar(
            EvalRun.for_tenant(tenant_id).where(EvalRun.id == eval_id).with_for_update()
        )
        if run is None or run.status in FINISHED:
            return None
        if run.dataset_id is None:
            await _finish(session, run, "failed", "the dataset was deleted")
            return None
        gone = await _starter_gone(session, run)
        if gone is not None:
            await _finish(session, run, "failed", gone)
            return None
        rows = await session.scalars(
            DatasetCase.for_tenant(tenant_id)
            .where(
                DatasetCase.dataset_id == run.dataset_id,
                DatasetCase.at_revision(run.dataset_revision),
            )
            .order_by(DatasetCase.id)
        )
        cases = [_Case(row.case_id, row.inputs, row.expected) for row in rows]
        done = set(
            (
                await session.execute(
                    select(EvalResult.case_id, EvalResult.attempt).where(
                        EvalResult.eval_id == eval_id
                    )
                )
            ).all()
        )
        run.status = "running"
        run.started_at = run.started_at or datetime.now(UTC)
        await commit(session)
        return run, cases, done


async def _why_stop(services: RunServices, run: EvalRun) -> _Stop | None:
    """Before each case: whether the eval was cancelled, or its author lost access."""
    async with services.sessions() as session:
        status = await session.scalar(
            EvalRun.for_tenant(run.tenant_id, EvalRun.status).where(EvalRun.id == run.id)
        )
        if status != "running":
            return _Stop("cancelled")
        gone = await _starter_gone(session, run)
    return None if gone is None else _Stop("failed", gone)


@dataclass(frozen=True, slots=True)
class _Ran:
    result: CaseResult
    run_id: uuid.UUID | None
    input_tokens: int | None = None
    output_tokens: int | None = None


async def _patiently(call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, waiting out the tenant's per-minute limit; a longer one stops the eval."""
    while True:
        try:
            return await call()
        except UsageLimited as limited:
            wait = float((limited.headers or {}).get("Retry-After", "1"))
            if wait > LONGEST_WAIT_SECONDS:
                raise _Stop("failed", f"a usage limit of the tenant: {limited.detail}") from None
            await asyncio.sleep(wait)


def _patient_judge(judge: Judge) -> Judge:
    async def patient(spec: JudgeSpec, case: CaseResult) -> tuple[float, str]:
        return await _patiently(lambda: judge(spec, case))

    return patient


async def _run_case(
    services: RunServices, principal: Principal, request: RunRequest, expected: Any
) -> _Ran:
    """The case run once; a run that fails is a result too (scored 0 with its reason). A
    per-minute limit is waited out; a longer one stops the eval."""
    try:
        record = await _patiently(lambda: execute_run(services, principal, request))
    except Problem as problem:  # bad inputs, the provider, an invalid output
        run_id = (problem.headers or {}).get(RUN_ID_HEADER)
        failed = CaseResult(
            inputs=request.variables, output=None, expected=expected, error=problem.detail
        )
        return _Ran(failed, uuid.UUID(run_id) if run_id else None)
    return _Ran(case_of_run(record, expected), record.id, record.input_tokens, record.output_tokens)


async def _store(
    services: RunServices,
    run: EvalRun,
    case: _Case,
    attempt: int,
    ran: _Ran,
    scored: CaseScore,
    specs: list[Any],
) -> None:
    """Write one result and count it, in one transaction; a result already stored (a resumed
    eval racing a stalled worker) is kept and not counted twice."""
    scores = [
        {
            "type": spec.type,
            "weight": spec.weight,
            "threshold": spec.threshold,
            "score": round(score.score, 6),
            "passed": score.passed,
            "reason": score.reason,
        }
        for spec, score in zip(specs, scored.scores, strict=True)
    ]
    async with services.sessions() as session:
        inserted = await session.scalar(
            insert(EvalResult)
            .values(
                tenant_id=run.tenant_id,
                eval_id=run.id,
                case_id=case.case_id,
                attempt=attempt,
                run_id=ran.run_id,
                output=ran.result.output,
                parsed=ran.result.parsed,
                error=ran.result.error,
                scores=scores,
                score=scored.score,
                passed=scored.passed,
                latency_ms=ran.result.latency_ms,
                input_tokens=ran.input_tokens,
                output_tokens=ran.output_tokens,
                cost=ran.result.cost,
            )
            .on_conflict_do_nothing(constraint="uq_eval_results_case_attempt")
            .returning(EvalResult.id)
        )
        if inserted is not None:
            await session.execute(
                update(EvalRun)
                .where(EvalRun.id == run.id, EvalRun.tenant_id == run.tenant_id)
                .values(completed=EvalRun.completed + 1)
            )
        await commit(session)


async def _finish(session: AsyncSession, run: EvalRun, status: str, error: str | None) -> None:
    run.summary = summarize(await outcomes_of(session, run.tenant_id, run.id))
    run.status, run.error = status, error
    run.finished_at = datetime.now(UTC)
    await commit(session)


async def run_eval(services: RunServices, tenant_id: uuid.UUID, eval_id: uuid.UUID) -> str:
    """Run what is left of an eval and close it; returns its status (a finished eval is left
    as it is)."""
    begun = await _begin(services, tenant_id, eval_id)
    if begun is None:
        return "finished"
    run, cases, done = begun
    specs = SPECS.validate_python(run.evaluators)
    principal = principal_of(run)
    case_services = services
    if run.rules is not None:
        scope = (run.rules["scope"][0], run.rules["scope"][1])
        case_services = with_draft(services, scope, run.rules["draft"])
    validate = make_validate(services.renderer, tenant_id)
    judge = _patient_judge(make_judge(services, principal))
    stop: list[_Stop] = []

    async def one(case: _Case, attempt: int) -> None:
        halt = await _why_stop(services, run)
        if halt is not None:
            stop.append(halt)
            return
        request = RunRequest(
            name=run.prompt,
            selector=("version", run.version),
            variables=case.inputs,
            end_user=f"eval-{run.id}",
            metadata={"eval": str(run.id), "case": str(case.case_id), "attempt": attempt},
        )
        try:
            ran = await _run_case(case_services, principal, request, case.expected)
            scored = await score_case(specs, ran.result, validate=validate, judge=judge)
        except _Stop as stopped:
            stop.append(stopped)
            return
        await _store(services, run, case, attempt, ran, scored, specs)

    todo = iter(
        [
            (case, attempt)
            for case in cases
            for attempt in range(run.repeat)
            if (case.case_id, attempt) not in done
        ]
    )

    async def lane() -> None:
        """One of `concurrency` lanes taking the next case until none is left (a task per
        lane, not per case: an eval of 100,000 runs holds `concurrency` of them)."""
        for case, attempt in todo:
            if stop:
                return
            await one(case, attempt)

    error: str | None = None
    status = "succeeded"
    try:
        async with asyncio.TaskGroup() as lanes:  # one failing lane cancels the others
            for _ in range(run.concurrency):
                lanes.create_task(lane())
    except Exception as failure:
        first = failure.exceptions[0] if isinstance(failure, ExceptionGroup) else failure
        log.exception("eval %s failed", eval_id)
        status, error = "failed", f"{type(first).__name__}: {first}"
    if stop and status == "succeeded":
        status, error = stop[0].status, stop[0].reason
    async with services.sessions() as session:
        current = await session.scalar(
            EvalRun.for_tenant(tenant_id).where(EvalRun.id == eval_id).with_for_update()
        )
        if current is None:
            return "deleted"
        if current.status == "cancelled":
            status, error = "cancelled", current.error
        await _finish(session, current, status, error)
    return status
