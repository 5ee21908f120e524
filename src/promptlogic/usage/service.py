"""Reading and setting a tenant's usage limits. No HTTP; callers commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.db.notify import publish
from promptlogic.runs.models import Run
from promptlogic.usage.models import UsageLimit

LIMITS_TOPIC = "usage_limits"


@dataclass(frozen=True, slots=True)
class Limits:
    requests_per_minute: int | None = None
    monthly_spend_cap: Decimal | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def any(self) -> bool:
        return self.requests_per_minute is not None or self.monthly_spend_cap is not None

    def summary(self) -> dict[str, Any]:
        cap = self.monthly_spend_cap
        return {
            "requests_per_minute": self.requests_per_minute,
            "monthly_spend_cap": None if cap is None else str(cap),
        }


NO_LIMITS = Limits()


def _limits(row: UsageLimit | None) -> Limits:
    if row is None:
        return NO_LIMITS
    return Limits(row.requests_per_minute, row.monthly_spend_cap, row.updated_at, row.updated_by)


async def get_limits(session: AsyncSession, *, tenant_id: uuid.UUID) -> Limits:
    row = await session.scalar(select(UsageLimit).where(UsageLimit.tenant_id == tenant_id))
    return _limits(row)


async def spent_this_month(session: AsyncSession, *, tenant_id: uuid.UUID) -> Decimal:
    """The cost of the tenant's recorded runs since the start of the month (UTC)."""
    now = datetime.now(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    total = await session.scalar(
        select(func.coalesce(func.sum(Run.cost), 0)).where(
            Run.tenant_id == tenant_id, Run.created_at >= start
        )
    )
    return Decimal(total)


async def set_limits(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    requests_per_minute: int | None,
    monthly_spend_cap: Decimal | None,
    actor: Actor,
) -> Limits:
    """Replace the tenant's limits (null: no limit); every worker applies them on commit."""
    before = await get_limits(session, tenant_id=tenant_id)
    values = {
        "requests_per_minute": requests_per_minute,
        "monthly_spend_cap": monthly_spend_cap,
        "updated_at": datetime.now(UTC),
        "updated_by": actor.name,
    }
    row = await session.scalar(
        insert(UsageLimit)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=[UsageLimit.tenant_id], set_=values)
        .returning(UsageLimit)
        .execution_options(populate_existing=True)
    )
    after = _limits(row)
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="usage_limits.set",
        target_type="usage_limits",
        target_id=str(tenant_id),
        before=before.summary(),
        after=after.summary(),
    )
    await publish(session, LIMITS_TOPIC, tenant_id=str(tenant_id))
    return after
