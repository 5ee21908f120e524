"""`/v1/limits`: the tenant's usage limits (read scope to see them, admin to change them)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from promptlogic.db.engine import SessionDep
from promptlogic.tenancy.auth import AdminPrincipal, ReadPrincipal
from promptlogic.usage import service
from promptlogic.usage.service import Limits

router = APIRouter(prefix="/v1/limits", tags=["usage limits"])

Cap = Annotated[
    Decimal | None,
    Field(ge=0, le=Decimal("999999999"), decimal_places=6),
    PlainSerializer(lambda v: None if v is None else float(v), when_used="json"),
]

Usd = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


class LimitsIn(BaseModel):
    """Both limits, each null for none; a PUT replaces both."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: Annotated[int | None, Field(ge=1, le=10_000_000)]
    monthly_spend_cap: Cap = Field(description="USD per calendar month (UTC).")


class LimitsOut(BaseModel):
    requests_per_minute: int | None
    monthly_spend_cap: Cap
    spent_this_month: Usd = Field(
        description="USD of the runs recorded since the month began (UTC); runs still "
        "buffered for writing are not in it yet."
    )
    updated_by: str | None

    @classmethod
    def of(cls, limits: Limits, spent: Decimal) -> LimitsOut:
        return cls(
            requests_per_minute=limits.requests_per_minute,
            monthly_spend_cap=limits.monthly_spend_cap,
            spent_this_month=spent,
            updated_by=limits.updated_by,
        )


@router.get("")
async def get_limits(principal: ReadPrincipal, session: SessionDep) -> LimitsOut:
    """The tenant's limits; runs over them are answered 429 with `Retry-After`."""
    limits = await service.get_limits(session, tenant_id=principal.tenant_id)
    spent = await service.spent_this_month(session, tenant_id=principal.tenant_id)
    return LimitsOut.of(limits, spent)


@router.put("")
async def set_limits(body: LimitsIn, principal: AdminPrincipal, session: SessionDep) -> LimitsOut:
    """Replace the tenant's limits; every worker applies them from its next run."""
    limits = await service.set_limits(
        session,
        tenant_id=principal.tenant_id,
        requests_per_minute=body.requests_per_minute,
        monthly_spend_cap=body.monthly_spend_cap,
        actor=principal.actor,
    )
    spent = await service.spent_this_month(session, tenant_id=principal.tenant_id)
    return LimitsOut.of(limits, spent)
