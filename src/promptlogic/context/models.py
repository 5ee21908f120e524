"""The table of context records: one JSON object per (tenant, namespace, key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from promptlogic.db.base import Base, CreatedAt, TenantScoped


class ContextRecord(CreatedAt, TenantScoped, Base):
    """A tenant's JSON document, replaced whole; `version` counts its changes from 1.

    The primary key is the natural one and also serves listing a namespace by key. Names are
    compared in the "C" collation (code point order), so a key prefix is a contiguous index
    range and pages come in the same order on every database.
    """

    __tablename__ = "context_records"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "namespace", "key", name="pk_context_records"),
        CheckConstraint("jsonb_typeof(value) = 'object'", name="value_is_object"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    namespace: Mapped[str] = mapped_column(String(100, collation="C"), nullable=False)
    key: Mapped[str] = mapped_column(String(200, collation="C"), nullable=False)
    value: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_by: Mapped[str] = mapped_column(String(300), nullable=False)
