"""One run: resolve and render the prompt, call the model, check the output, record, answer.

Everything but the model call is served from per-worker caches; the record is written behind
the response (or, with `PROMPTLOGIC_RUN_RECORDS=durable`, before it).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.errors import Problem
from promptlogic.prompts.cache import PlanCache, Selector
from promptlogic.prompts.render import render_prompt
from promptlogic.providers.base import Completion, json_schema_of
from promptlogic.providers.catalog import PriceBook
from promptlogic.providers.clients import ProviderRegistry
from promptlogic.providers.reliability import ProviderFailed, reliable
from promptlogic.rendering import Renderer, sharing
from promptlogic.runs.recorder import RunRecorder
from promptlogic.runs.service import RunRecord
from promptlogic.tenancy.principal import Principal


class OutputInvalid(Problem):
    """The model answered, but not in the response format the version requires."""

    status, slug = 502, "output-invalid"


@dataclass(frozen=True, slots=True)
class RunServices:
    """The per-worker resources a run uses, owned by the app's lifespan."""

    plans: PlanCache
    renderer: Renderer
    providers: ProviderRegistry
    prices: PriceBook
    recorder: RunRecorder


@dataclass(frozen=True, slots=True)
class RunRequest:
    name: str
    selector: Selector
    variables: dict[str, Any]
    end_user: str | None
    metadata: dict[str, Any]


async def execute_run(
    session: AsyncSession, services: RunServices, principal: Principal, request: RunRequest
) -> RunRecord:
    """Run a prompt once and return its record (already handed to the recorder)."""
    started = time.perf_counter()
    record = RunRecord(
        tenant_id=principal.tenant_id,
        prompt=request.name,
        principal_type="api_key",
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
        session,
        cache=services.plans,
        renderer=services.renderer,
        tenant_id=principal.tenant_id,
        name=request.name,
        selector=request.selector,
        variables=request.variables,
    )
    plan = rendered.plan
    record.version = plan.version
    record.versions_used = [{"prompt": u.prompt, "version": u.version} for u in plan.versions_used]
    record.messages = rendered.messages
    try:
        connection = await services.providers.resolve_connection(
            principal.tenant_id, plan.model.get("provider")
        )
        provider = reliable(services.providers.provider_for(connection), connection)
        completion = await provider.complete(rendered.messages, plan.model, plan.response_format)
        record.provider = connection.kind if connection.kind == "offline" else connection.name
        _take_completion(record, completion)
        record.cost = await _cost(services.prices, principal.tenant_id, completion)
        with sharing(principal.tenant_id):
            record.parsed = await _parsed_output(
                services.renderer, plan.response_format, completion
            )
        record.status = "succeeded"
        return record
    except ProviderFailed as failure:
        record.status = "timed_out" if failure.status == 504 else "failed"
        record.error = {"type": failure.slug, "detail": failure.detail}
        raise
    except OutputInvalid as invalid:
        record.error = {"type": invalid.slug, "detail": invalid.detail}
        raise
    finally:
        record.latency_ms = round((time.perf_counter() - started) * 1000)
        await services.recorder.persist(record)


def _take_completion(record: RunRecord, completion: Completion) -> None:
    record.output = completion.text
    record.model = completion.model
    record.input_tokens = completion.usage.input_tokens
    record.output_tokens = completion.usage.output_tokens


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
    wrapped = {"type": "object", "properties": {"output": dict(schema)}, "required": ["output"]}
    problems = await renderer.validate_variables(wrapped, {"output": parsed})
    if problems:
        detail = "; ".join(p["message"] for p in problems[:5])
        raise OutputInvalid(f"The model's output does not satisfy the response format: {detail}")
    return parsed
