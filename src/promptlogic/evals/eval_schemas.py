"""Request and response bodies of eval runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from promptlogic.evals.specs import EvaluatorSpecs
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.rules.schemas import MAX_PREVIEW_CHANGES, RuleChange, SetName

MAX_REPEAT = 20
MAX_CONCURRENCY = 16
DEFAULT_CONCURRENCY = 4

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
LabelName = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=50)]


class DraftRules(BaseModel):
    """The tenant rules as a draft: changes to one scope's live rules, as a preview takes them."""

    model_config = ConfigDict(extra="forbid")

    set: SetName | None = Field(default=None, description="The set changed; else the prompt's.")
    changes: Annotated[list[RuleChange], Field(min_length=1, max_length=MAX_PREVIEW_CHANGES)]


class EvalCreate(BaseModel):
    """A prompt version (or a label, resolved now), a dataset and evaluators."""

    model_config = ConfigDict(extra="forbid")

    prompt: Name
    version: Annotated[int, Field(strict=True, ge=1)] | None = None
    label: LabelName | None = None
    dataset: Name
    evaluators: EvaluatorSpecs
    repeat: Annotated[int, Field(strict=True, ge=1, le=MAX_REPEAT)] = 1
    concurrency: Annotated[int, Field(strict=True, ge=1, le=MAX_CONCURRENCY)] = DEFAULT_CONCURRENCY
    rules: DraftRules | None = Field(
        default=None, description="Run under these draft rules; without, under the live ones."
    )

    @model_validator(mode="after")
    def _one_selector(self) -> EvalCreate:
        if self.version is not None and self.label is not None:
            raise ValueError("give a `version` or a `label`, not both")
        return self


class ResultOut(BaseModel):
    case_id: uuid.UUID
    attempt: int
    run_id: uuid.UUID | None
    output: str | None
    parsed: Any
    error: str | None
    score: float
    passed: bool
    scores: list[dict[str, Any]] = Field(
        description="Each evaluator: `type`, `weight`, `threshold`, `score`, `passed`, `reason`."
    )
    latency_ms: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None


class EvalOut(BaseModel):
    id: uuid.UUID
    prompt: str
    version: int
    label: str | None
    dataset: str
    dataset_revision: int
    evaluators: list[dict[str, Any]]
    rules: dict[str, Any] | None
    repeat: int
    concurrency: int
    status: str = Field(description="`queued`, `running`, `succeeded`, `failed` or `cancelled`.")
    progress: dict[str, int] = Field(description="`completed` of `total` case runs.")
    summary: dict[str, Any] | None = Field(description="Once finished: pass_rate and the rest.")
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    results: list[ResultOut] | None = Field(
        default=None, description="The first page of per-case results (see `/results`)."
    )
    results_next_cursor: str | None = None


class GateIn(BaseModel):
    """A label's promotion gate: the eval a version must pass before the label moves to it."""

    model_config = ConfigDict(extra="forbid")

    dataset: Annotated[str, Field(pattern=NAME_PATTERN)]
    evaluators: EvaluatorSpecs
    min_pass_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 1.0
    no_regressions: Annotated[bool, Field(strict=True)] = True
