"""Tables of evals: datasets and their cases, versioned so that an eval run can name the exact
set of cases it used; eval runs and their per-case results.

A dataset's `revision` counts its changes. Case rows are never updated: a change adds a row
(with the case's stable `case_id`) at the new revision and closes the old one
(`removed_revision`), so the cases of revision R are the rows with
`added_revision <= R < removed_revision` (or no `removed_revision`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    or_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from promptlogic.db.base import Base, CreatedAt, TenantScoped, UUIDPrimaryKey


class Dataset(UUIDPrimaryKey, CreatedAt, TenantScoped, Base):
    """A named set of test cases of a tenant; `revision` is bumped under a row lock."""

    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_datasets_tenant_name"),
        CheckConstraint("revision >= 0", name="revision_not_negative"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class DatasetCase(CreatedAt, TenantScoped, Base):
    """One case as it was from `added_revision` until `removed_revision` (exclusive)."""

    __tablename__ = "dataset_cases"
    __table_args__ = (
        Index("ix_dataset_cases_dataset_id_case_id", "dataset_id", "case_id"),
        Index("ix_dataset_cases_dataset_id_added_revision", "dataset_id", "added_revision"),
        CheckConstraint("jsonb_typeof(inputs) = 'object'", name="inputs_is_object"),
        CheckConstraint(
            "removed_revision IS NULL OR removed_revision > added_revision", name="revisions"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False
    )
    case_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # Text (a JSON string) or any JSON value; null when the case has no expected value.
    expected: Mapped[Any] = mapped_column(JSONB(none_as_null=True), nullable=True)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), nullable=False)
    notes: Mapped[str] = mapped_column(Text, nullable=False, default="")
    source_run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    added_revision: Mapped[int] = mapped_column(Integer, nullable=False)
    removed_revision: Mapped[int | None] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(300), nullable=False)

    @classmethod
    def at_revision(cls, revision: int) -> Any:
        """The condition that a row is one of the dataset's cases at `revision`."""
        return and_(
            cls.added_revision <= revision,
            or_(cls.removed_revision.is_(None), cls.removed_revision > revision),
        )


EVAL_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


class EvalRun(UUIDPrimaryKey, CreatedAt, TenantScoped, Base):
    """One eval: a prompt version, a dataset revision and evaluators, `repeat` times per case.

    What it ran on is fixed when it is created: the version a label pointed at then, the
    dataset's revision, the evaluators, and the draft rule changes if any. `completed` counts
    the stored results, so progress survives a worker's restart.
    """

    __tablename__ = "eval_runs"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in EVAL_STATUSES) + ")",
            name="status",
        ),
        CheckConstraint("repeat BETWEEN 1 AND 20", name="repeat_range"),
        Index("ix_eval_runs_tenant_id_prompt_created_at", "tenant_id", "prompt", "created_at"),
    )

    prompt: Mapped[str] = mapped_column(String(100), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    label: Mapped[str | None] = mapped_column(String(50))  # the label resolved at creation
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("datasets.id", ondelete="SET NULL")
    )
    dataset_name: Mapped[str] = mapped_column(String(100), nullable=False)
    dataset_revision: Mapped[int] = mapped_column(Integer, nullable=False)
    evaluators: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    # Draft rule changes applied to every case (as a rules preview takes them), or null.
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    repeat: Mapped[int] = mapped_column(Integer, nullable=False)
    concurrency: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    completed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    error: Mapped[str | None] = mapped_column(Text)
    # Who started it: the runs it makes are theirs (kind, id, name of the principal).
    principal: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EvalResult(CreatedAt, TenantScoped, Base):
    """One case of an eval, once (`attempt` counts the repeats from 0): the run, its output,
    each evaluator's score and reason. Written once; the unique key makes a resumed eval skip
    what it already has."""

    __tablename__ = "eval_results"
    __table_args__ = (
        UniqueConstraint("eval_id", "case_id", "attempt", name="uq_eval_results_case_attempt"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    eval_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False
    )
    case_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    output: Mapped[str | None] = mapped_column(Text)
    parsed: Mapped[Any] = mapped_column(JSONB(none_as_null=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    scores: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    passed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))


class PromptGate(TenantScoped, Base):
    """What moving a protected label needs: a finished eval of the target version on the
    dataset's current revision with these evaluators, a pass rate, and (optionally) no case
    worse than under the version the label holds."""

    __tablename__ = "prompt_gates"
    __table_args__ = (
        UniqueConstraint("prompt_id", "label", name="uq_prompt_gates_prompt_label"),
        CheckConstraint("min_pass_rate BETWEEN 0 AND 1", name="min_pass_rate_range"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    prompt_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False
    )
    label: Mapped[str] = mapped_column(String(50), nullable=False)
    dataset_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False
    )
    evaluators: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    min_pass_rate: Mapped[float] = mapped_column(Float, nullable=False)
    no_regressions: Mapped[bool] = mapped_column(Boolean, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_by: Mapped[str] = mapped_column(String(300), nullable=False)
