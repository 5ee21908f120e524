"""Response bodies of run records. Nothing secret is stored on a run, so nothing is hidden."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from promptlogic.prompts.schemas import LABEL_PATTERN
from promptlogic.runs.models import Run

Cost = Annotated[
    Decimal | None, PlainSerializer(lambda v: None if v is None else float(v), when_used="json")
]


class PrincipalOut(BaseModel):
    type: str
    id: str | None
    name: str


class UsageOut(BaseModel):
    input_tokens: int | None
    output_tokens: int | None


class RunOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    status: str
    prompt: str
    version: int | None
    label: str | None
    arm: str | None
    versions_used: list[dict[str, Any]]
    bound: list[dict[str, Any]] = Field(
        default=[], description="What the version's context bindings bound (records, chunks)."
    )
    principal: PrincipalOut
    end_user: str | None
    inputs: dict[str, Any]
    messages: list[Any] | None
    output: str | None
    parsed: Any
    model: str | None
    provider: str | None
    usage: UsageOut
    cost: Cost
    latency_ms: int
    time_to_first_token_ms: int | None
    repaired: bool
    error: dict[str, Any] | None
    metadata: dict[str, Any]
    idempotency_key: str | None

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(
            id=run.id,
            created_at=run.created_at,
            status=run.status,
            prompt=run.prompt,
            version=run.version,
            label=run.label,
            arm=run.arm,
            versions_used=run.versions_used,
            bound=run.bound,
            principal=PrincipalOut(
                type=run.principal_type, id=run.principal_id, name=run.principal_name
            ),
            end_user=run.end_user,
            inputs=run.inputs,
            messages=run.messages,
            output=run.output,
            parsed=run.parsed,
            model=run.model,
            provider=run.provider,
            usage=UsageOut(input_tokens=run.input_tokens, output_tokens=run.output_tokens),
            cost=run.cost,
            latency_ms=run.latency_ms,
            time_to_first_token_ms=run.time_to_first_token_ms,
            repaired=run.repaired,
            error=run.error,
            metadata=run.meta,
            idempotency_key=run.idempotency_key,
        )


class RunRequestBody(BaseModel):
    """`POST /v1/prompts/{name}/run`."""

    model_config = ConfigDict(extra="forbid")

    variables: dict[str, Any] = {}
    label: Annotated[str, StringConstraints(pattern=LABEL_PATTERN)] | None = None
    version: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    stream: bool = False
    end_user: Annotated[str, StringConstraints(max_length=300)] | None = None
    metadata: dict[str, Any] = {}


class RunResult(BaseModel):
    id: uuid.UUID
    status: str
    output: str | None
    parsed: Any
    model: str | None
    provider: str | None
    version: int | None
    label: str | None
    versions_used: list[dict[str, Any]]
    bound: list[dict[str, Any]] = Field(
        default=[], description="What the version's context bindings bound (records, chunks)."
    )
    usage: dict[str, int | None]
    cost: Cost
    latency_ms: int
    repaired: bool = False
    finish_reason: str | None = Field(
        default=None, description="Why the model stopped: `stop`, or `length` when cut short."
    )
