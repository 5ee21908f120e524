"""Tables of usage limits: each tenant's limits, and the request count of the current minute."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Integer, Numeric, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from promptlogic.db.base import Base


class UsageLimit(Base):
    """A tenant's limits; no row, or a null column, means no limit."""

    __tablename__ = "usage_limits"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    monthly_spend_cap: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_by: Mapped[str] = mapped_column(String(300), nullable=False)


class RateWindow(Base):
    """Requests handed out to workers in the tenant's current minute (one row per tenant).

    Workers take requests from it in leases, so the count is shared by every worker without a
    round trip per request; see `limiter.py`.
    """

    __tablename__ = "usage_rate_windows"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    requests: Mapped[int] = mapped_column(Integer, nullable=False)
    granted: Mapped[int] = mapped_column(Integer, nullable=False)
