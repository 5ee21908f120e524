"""Tables of prompts: the prompt, its immutable versions, its labels and their moves."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from promptlogic.db.base import Base, CreatedAt, TenantScoped, UUIDPrimaryKey


class Prompt(UUIDPrimaryKey, CreatedAt, TenantScoped, Base):
    """A named piece of a tenant's logic. `latest_version` is bumped under a row lock."""

    __tablename__ = "prompts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_prompts_tenant_name"),
        CheckConstraint("kind IN ('chat', 'context')", name="kind"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    protected_labels: Mapped[list[str]] = mapped_column(ARRAY(String(50)), nullable=False)
    latest_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # The admins' policy on tenant rules (rules/policy.py); null: the defaults.
    rules_policy: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class PromptVersion(UUIDPrimaryKey, CreatedAt, TenantScoped, Base):
    """An immutable snapshot of a prompt's logic; rows are inserted, never updated."""

    __tablename__ = "prompt_versions"
    __table_args__ = (
        UniqueConstraint("prompt_id", "number", name="uq_prompt_versions_prompt_number"),
    )

    prompt_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    messages: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    template: Mapped[str | None] = mapped_column(Text)
    input_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    model: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    response_format: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    context: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    commit_message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    author: Mapped[str] = mapped_column(String(300), nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class PromptLabel(TenantScoped, Base):
    """A movable name on one version of a prompt."""

    __tablename__ = "prompt_labels"
    __table_args__ = (UniqueConstraint("prompt_id", "name", name="uq_prompt_labels_prompt_name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    prompt_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # A traffic split: [{"version": 3, "weight": 90}, {"version": 4, "weight": 10}]; `version`
    # is then its heaviest arm. Null when the label points at one version.
    split: Mapped[list[dict[str, int]] | None] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_by: Mapped[str] = mapped_column(String(300), nullable=False)


class LabelMove(CreatedAt, TenantScoped, Base):
    """One move of a label: the history that makes a rollback a move back."""

    __tablename__ = "prompt_label_moves"
    __table_args__ = (Index("ix_prompt_label_moves_prompt_label_id", "prompt_id", "label", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    prompt_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False
    )
    label: Mapped[str] = mapped_column(String(50), nullable=False)
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int] = mapped_column(Integer, nullable=False)
    to_split: Mapped[list[dict[str, int]] | None] = mapped_column(JSONB)
    actor: Mapped[str] = mapped_column(String(300), nullable=False)
