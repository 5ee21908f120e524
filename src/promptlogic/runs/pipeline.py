"""One run: resolve and render the prompt, call the model, check the output, record, answer.

Everything but the model call is served from per-worker caches; the record is written behind
the response (or, with `PROMPTLOGIC_RUN_RECORDS=durable`, before it).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.errors import Problem
from promptlogic.prompts.bindings import Binder
from promptlogic.prompts.cache import PlanCache, Selector
from promptlogic.prompts.render import render_prompt
from promptlogic.providers.base import ChatProvider, Completion, Delta, json_schema_of
from promptlogic.providers.catalog import PriceBook
from promptlogic.providers.clients import ProviderRegistry
from promptlogic.providers.reliability import reliable
from promptlogic.rendering import Renderer, sharing
from promptlogic.rendering.schema import OUTPUT_FIELD, output_schema
from promptlogic.runs.recorder import RunNotRecorded, RunRecorder
from promptlogic.runs.service import RunRecord
from promptlogic.tenancy.principal import Principal
from promptlogic.usage.limiter import UsageLimiter


class OutputInvalid(Problem):
    """The model answered, but not in the response format the version requires."""

    status, slug = 502, "output-invalid"


RUN_ID_HEADER = "X-Promptlogic-Run-Id"  # on a failed run's problem: the run to look up


class RunNotKept(Problem):
    """Durable records: the run's record could not be committed, so it is not answered."""

    status, slug = 503, "run-not-recorded"


@dataclass(frozen=True, slots=True)
class RunServices:
    """The per-worker resources a run uses, owned by the app's lifespan."""

    sessions: async_sessionmaker[AsyncSession]
    plans: PlanCache
    renderer: Renderer
    providers: ProviderRegistry
    prices: PriceBook
    recorder: RunRecorder
    limits: UsageLimiter
    binder: Binder

    @classmethod
    def of(cls, state: Any) -> RunServices:
        """The services on the app's `state`, as the lifespan set them up."""
        return cls(
            sessions=state.sessionmaker,
            plans=state.plan_cache,
            renderer=state.renderer,
            providers=state.providers,
            prices=state.prices,
            recorder=state.run_recorder,
            limits=state.usage_limiter,
            binder=state.binder,
        )


@dataclass(frozen=True, slots=True)
class RunRequest:
    name: str
    selector: Selector
    variables: dict[str, Any]
    end_user: str | None
    metadata: dict[str, Any]


@dataclass
class PreparedRun:
    """A run rendered and bound to its provider, ready to call the model."""

    record: RunRecord
    messages: list[dict[str, str]]
    model: dict[str, Any]
    response_format: dict[str, Any] | None
    provider: ChatProvider
    started: float


async def prepare_run(
    services: RunServices, principal: Principal, request: RunRequest
) -> PreparedRun:
    """Everything before the model call; its errors (bad input, unknown prompt) are answered
    before any response starts and are not runs."""
    started = time.perf_counter()
    await services.limits.admit(principal.tenant_id)
    record = RunRecord(
        tenant_id=principal.tenant_id,
        prompt=request.name,
        principal_type=principal.kind,
        principal_id=str(principal.key_id),
        principal_name=principal.key_name,
        status="failed",
        latency_ms=0,
        end_user=request.end_user,
        inputs=request.variables,
        metadata=request.metadata,
        label=request.selector[1] if request.selector[0] == "label" else None,  # type: ignore[arg-type]
    )
    rendered = await render_prompt(
        services.sessions,
        cache=services.plans,
        renderer=services.renderer,
        tenant_id=principal.tenant_id,
        name=request.name,
        selector=request.selector,
        variables=request.variables,
        split_key=request.end_user,
        binder=services.binder,
    )
    plan = rendered.plan
    record.version = plan.version
    record.arm = None if rendered.arm is None else str(rendered.arm)
    record.versions_used = [{"prompt": u.prompt, "version": u.version} for u in plan.versions_used]
    record.messages = rendered.messages
    record.bound = rendered.bound
    connection = await services.providers.resolve_connection(
        principal.tenant_id, plan.model.get("provider")
    )
    record.provider = connection.kind if connection.kind == "offline" else connection.name
    provider = reliable(services.providers.provider_for(connection), connection)
    return PreparedRun(
        record, rendered.messages, plan.model, plan.response_format, provider, started
    )


async def execute_run(
    services: RunServices, principal: Principal, request: RunRequest
) -> RunRecord:
    """Run a prompt once and return its record (already handed to the recorder)."""
    run = await prepare_run(services, principal, request)
    try:
        completion = await run.provider.complete(run.messages, run.model, run.response_format)
        try:
            await _finish(services, principal, run, completion)
        except OutputInvalid as invalid:
            if not run.model.get("repair"):
                raise
            run.record.repaired = True
            messages = _repair_messages(run, completion, invalid)
            repaired = await run.provider.complete(messages, run.model, run.response_format)
            await _finish(services, principal, run, repaired)
        return run.record
    except Problem as problem:  # the provider, the output, or a limit on checking it
        _fail(run.record, problem)
        problem.headers = {**(problem.headers or {}), RUN_ID_HEADER: str(run.record.id)}
        raise
    except asyncio.CancelledError:  # the client hung up while the model was answering
        run.record.status = "cancelled"
        raise
    finally:
        await _persist(services, run)


async def stream_run(
    services: RunServices, principal: Principal, run: PreparedRun
) -> AsyncIterator[str]:
    """Server-Sent Events: `delta` events as text arrives, then one `done` event with the
    run's id, usage, cost and parsed output, or one `error` event. Recorded either way; the
    last event waits for the record when records are durable."""
    recorded = False
    try:
        try:
            async for event in _stream_deltas(services, principal, run):
                yield event
            last = _event("done", result_of(run.record, _elapsed_ms(run)))
        except Problem as problem:  # the provider, the output, or a limit on checking it
            _fail(run.record, problem)
            last = _error_event(run.record, problem)
        recorded = True
        try:
            await _persist(services, run)
        except RunNotKept as problem:
            last = _error_event(run.record, problem)
        yield last
    finally:
        if not recorded:  # the client left mid-stream: no await here, the task is going away
            if run.record.status == "failed" and run.record.error is None:
                run.record.status = "cancelled"
            run.record.latency_ms = _elapsed_ms(run)
            services.limits.note_run(run.record)
            services.recorder.record(run.record)


async def _stream_deltas(
    services: RunServices, principal: Principal, run: PreparedRun
) -> AsyncIterator[str]:
    """The streamed call, and its one repair attempt when the version allows it."""
    try:
        async for event in _stream_attempt(services, principal, run, run.messages):
            yield event
    except OutputInvalid as invalid:
        if not run.model.get("repair") or run.record.output is None:
            raise
        yield _event("repair", {"detail": invalid.detail})
        run.record.repaired = True
        messages = _repair_messages(run, run.record.output, invalid)
        async for event in _stream_attempt(services, principal, run, messages):
            yield event


def _error_event(record: RunRecord, problem: Problem) -> str:
    return _event(
        "error",
        {
            "id": str(record.id),
            "status": problem.status,
            "type": problem.slug,
            "detail": problem.detail,
        },
    )


async def _stream_attempt(
    services: RunServices, principal: Principal, run: PreparedRun, messages: list[dict[str, str]]
) -> AsyncIterator[str]:
    """One streamed call: a `delta` event per piece of text, then the completion is checked."""
    async for item in run.provider.stream(messages, run.model, run.response_format):
        if isinstance(item, Delta):
            if run.record.time_to_first_token_ms is None:
                run.record.time_to_first_token_ms = _elapsed_ms(run)
            yield _event("delta", {"text": item.text})
        else:
            await _finish(services, principal, run, item)


REPAIR_INSTRUCTION = (
    "Your previous answer does not satisfy the required response format.\n"
    "Problem: {detail}\n"
    "Answer again with only the corrected output, which must satisfy the format."
)


def _repair_messages(
    run: PreparedRun, answer: Completion | str, invalid: OutputInvalid
) -> list[dict[str, str]]:
    """The one repair attempt: the conversation, the invalid answer and what is wrong with it."""
    text = answer if isinstance(answer, str) else answer.text
    return [
        *run.messages,
        {"role": "assistant", "content": text},
        {"role": "user", "content": REPAIR_INSTRUCTION.format(detail=invalid.detail)},
    ]


def result_of(record: RunRecord, latency_ms: int | None = None) -> dict[str, Any]:
    """The answer to a run, as the API returns it (and as the stream's `done` event)."""
    return {
        "id": str(record.id),
        "status": record.status,
        "output": record.output,
        "parsed": record.parsed,
        "model": record.model,
        "provider": record.provider,
        "version": record.version,
        "label": record.label,
        "versions_used": list(record.versions_used),
        "bound": list(record.bound),
        "usage": {"input_tokens": record.input_tokens, "output_tokens": record.output_tokens},
        "cost": None if record.cost is None else float(record.cost),
        "latency_ms": record.latency_ms if latency_ms is None else latency_ms,
        "repaired": record.repaired,
        "finish_reason": record.finish_reason,
    }


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _elapsed_ms(run: PreparedRun) -> int:
    return round((time.perf_counter() - run.started) * 1000)


async def _finish(
    services: RunServices, principal: Principal, run: PreparedRun, completion: Completion
) -> None:
    record = run.record
    _take_completion(record, completion)
    cost = await _cost(services.prices, principal.tenant_id, completion)
    if record.repaired:  # the run's cost is both calls', unknown if either's is
        cost = None if cost is None or record.cost is None else record.cost + cost
    record.cost = cost
    with sharing(principal.tenant_id):
        record.parsed = await _parsed_output(services.renderer, run.response_format, completion)
    record.status = "succeeded"


def _fail(record: RunRecord, problem: Problem) -> None:
    record.status = "timed_out" if problem.status == 504 else "failed"
    record.error = {"type": problem.slug, "detail": problem.detail}


async def _persist(services: RunServices, run: PreparedRun) -> None:
    run.record.latency_ms = _elapsed_ms(run)
    services.limits.note_run(run.record)
    try:
        await services.recorder.persist(run.record)
    except RunNotRecorded:
        raise RunNotKept(
            "The run finished but its record could not be written, so its answer is withheld. "
            "Try again shortly.",
            headers={"Retry-After": "1"},
        ) from None


def _take_completion(record: RunRecord, completion: Completion) -> None:
    """The answer's text and model; tokens add up over the calls of a run (with its repair)."""
    record.output = completion.text
    record.model = completion.model
    record.finish_reason = completion.finish_reason
    record.input_tokens = (record.input_tokens or 0) + completion.usage.input_tokens
    record.output_tokens = (record.output_tokens or 0) + completion.usage.output_tokens


async def _cost(prices: PriceBook, tenant_id: uuid.UUID, completion: Completion) -> Decimal | None:
    if completion.provider == "offline":
        return Decimal(0)
    return await prices.cost_of(
        tenant_id, completion.model, completion.usage.input_tokens, completion.usage.output_tokens
    )


async def _parsed_output(
    renderer: Renderer, response_format: dict[str, Any] | None, completion: Completion
) -> Any:
    """The output as JSON, checked against the response format (in a render worker: the
    schema is the tenant's and may be costly); None without a response format."""
    schema = json_schema_of(response_format)
    if schema is None:
        return None
    try:
        parsed = json.loads(completion.text)
    except ValueError:
        raise OutputInvalid(
            "The model's output is not JSON, but the version requires a JSON response format."
        ) from None
    problems = await renderer.validate_variables(
        output_schema(dict(schema)), {OUTPUT_FIELD: parsed}
    )
    if problems:
        detail = "; ".join(p["message"] for p in problems[:5])
        raise OutputInvalid(f"The model's output does not satisfy the response format: {detail}")
    return parsed
