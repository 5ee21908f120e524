"""Tables of providers: tenants' connections to model providers, and model prices."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    Select,
    String,
    UniqueConstraint,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from promptlogic.db.base import Base, CreatedAt, TenantScoped, UUIDPrimaryKey

KINDS = ("openai", "azure_openai", "openai_compatible", "offline")


class ProviderConnection(UUIDPrimaryKey, CreatedAt, TenantScoped, Base):
    """How a tenant reaches a provider. Credentials are stored only encrypted (see secrets)."""

    __tablename__ = "provider_connections"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_provider_connections_tenant_name"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in KINDS)})", name="kind"),
        # At most one default per tenant, even when two admins set one at the same time.
        Index(
            "uq_provider_connections_default",
            "tenant_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    base_url: Mapped[str | None] = mapped_column(String(2000))
    api_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    api_key_hint: Mapped[str | None] = mapped_column(String(4))
    headers_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    header_names: Mapped[list[str]] = mapped_column(ARRAY(String(100)), nullable=False)
    timeout_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    api_version: Mapped[str | None] = mapped_column(String(50))
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class ModelPrice(UUIDPrimaryKey, Base):
    """A model's price per million tokens: a catalog row (no tenant) or a tenant's override."""

    __tablename__ = "model_prices"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id",
            "model",
            name="uq_model_prices_tenant_model",
            postgresql_nulls_not_distinct=True,
        ),
    )

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE")
    )
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    input_per_million: Mapped[Decimal] = mapped_column(Numeric(12, 6), nullable=False)
    output_per_million: Mapped[Decimal] = mapped_column(Numeric(12, 6), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )

    @classmethod
    def visible_to(cls, tenant_id: uuid.UUID, *columns: Any) -> Select[Any]:
        """The catalog rows and the tenant's own overrides: never another tenant's."""
        statement = select(*columns) if columns else select(cls)
        return statement.where(or_(cls.tenant_id.is_(None), cls.tenant_id == tenant_id))
