"""Tables of tenant rules: the rule as it is now, and a snapshot of each of its revisions."""

from __future__ import annotations

import uuid
from datetime import datetime

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
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from promptlogic.db.base import Base, CreatedAt, TenantScoped, UUIDPrimaryKey

STATUSES = ("draft", "enabled", "disabled", "rejected")


class Rule(UUIDPrimaryKey, CreatedAt, TenantScoped, Base):
    """A plain-language instruction of a tenant, scoped to one prompt or one named rule set.

    `revision` is 1 when created and one more on each change; every revision is also kept in
    `rule_revisions`. A rule reaches a render only while its status is `enabled`.
    """

    __tablename__ = "rules"
    __table_args__ = (
        CheckConstraint("(prompt IS NULL) <> (rule_set IS NULL)", name="one_scope"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in STATUSES) + ")", name="status"
        ),
        CheckConstraint("revision >= 1", name="revision_positive"),
        Index("ix_rules_tenant_id_prompt_priority", "tenant_id", "prompt", "priority"),
        Index("ix_rules_tenant_id_rule_set_priority", "tenant_id", "rule_set", "priority"),
    )

    prompt: Mapped[str | None] = mapped_column(String(100))
    rule_set: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    check_reason: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    author: Mapped[str] = mapped_column(String(300), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class RuleRevision(TenantScoped, Base):
    """One revision of a rule, whole, as it was saved; rows are inserted, never updated."""

    __tablename__ = "rule_revisions"
    __table_args__ = (
        UniqueConstraint("rule_id", "revision", name="uq_rule_revisions_rule_revision"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    rule_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rules.id", ondelete="CASCADE"), nullable=False
    )
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    check_reason: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(300), nullable=False)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
