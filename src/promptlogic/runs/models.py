"""The runs table: one row per execution, written once by the recorder, never updated."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from promptlogic.db.base import Base, TenantScoped

STATUSES = ("succeeded", "failed", "timed_out", "cancelled")


class Run(TenantScoped, Base):
    """An execution of a prompt version.

    `id` and `created_at` (when the run started) come from the app, not the database: the
    response carries the id before the row is written, and a batch written later keeps each
    run's own start time.
    """

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        # The list is newest first, paged by (created_at, id): both indexes serve that order.
        Index("ix_runs_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        Index("ix_runs_tenant_id_prompt_created_at", "tenant_id", "prompt", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    prompt: Mapped[str] = mapped_column(String(100), nullable=False)
    version: Mapped[int | None] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(100))
    arm: Mapped[str | None] = mapped_column(String(100))
    versions_used: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    # The state the version's context bindings bound: record keys and versions, chunk ids and
    # scores, so an output is traceable to the state behind it.
    bound: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    principal_type: Mapped[str] = mapped_column(String(20), nullable=False)
    principal_id: Mapped[str | None] = mapped_column(String(64))
    principal_name: Mapped[str] = mapped_column(String(300), nullable=False)
    end_user: Mapped[str | None] = mapped_column(String(300))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    messages: Mapped[list[Any] | None] = mapped_column(JSONB)
    output: Mapped[str | None] = mapped_column(Text)
    parsed: Mapped[Any | None] = mapped_column(JSONB)
    model: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(100))
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(18, 10))
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    time_to_first_token_ms: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    # The output failed the response format and the model was asked once to fix it.
    repaired: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # `metadata` is taken on declarative classes; the column keeps the API's name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))


class IdempotencyKey(Base):
    """A claimed Idempotency-Key and, once answered, the response to replay."""

    __tablename__ = "run_idempotency_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
