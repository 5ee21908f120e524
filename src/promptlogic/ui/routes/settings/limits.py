"""Usage limits: the tenant's requests per minute and monthly spend cap, beside what it has
spent this month."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Problem
from promptlogic.ui.routes.settings.common import Errors, Text, failed, or_none, usd
from promptlogic.ui.sessions import SignedIn
from promptlogic.ui.web import Admin, flash, page, redirect
from promptlogic.usage import service as usage
from promptlogic.usage.router import LimitsIn

router = APIRouter()


async def _limits_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    *,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
    status: int = 200,
) -> Response:
    limits = await usage.get_limits(session, tenant_id=member.tenant.id)
    spent = await usage.spent_this_month(session, tenant_id=member.tenant.id)
    if values is None:
        cap, rpm = limits.monthly_spend_cap, limits.requests_per_minute
        values = {
            "requests_per_minute": "" if rpm is None else str(rpm),
            "monthly_spend_cap": "" if cap is None else usd(cap),
        }
    context = {
        "limits": limits,
        "spent": spent,
        "values": values,
        "errors": errors or {},
        "usd": usd,
    }
    return page(request, "settings/limits.html", context, status_code=status)


@router.get("/settings/limits")
async def limits(request: Request, member: Admin, session: SessionDep) -> Response:
    return await _limits_page(request, member, session)


@router.post("/settings/limits")
async def set_limits(
    request: Request,
    member: Admin,
    session: SessionDep,
    requests_per_minute: Text = "",
    monthly_spend_cap: Text = "",
) -> Response:
    values = {"requests_per_minute": requests_per_minute, "monthly_spend_cap": monthly_spend_cap}
    try:
        body = LimitsIn.model_validate(
            {
                "requests_per_minute": or_none(requests_per_minute),
                "monthly_spend_cap": or_none(monthly_spend_cap),
            }
        )
        await usage.set_limits(
            session,
            tenant_id=member.tenant.id,
            requests_per_minute=body.requests_per_minute,
            monthly_spend_cap=body.monthly_spend_cap,
            actor=member.actor,
        )
    except (ValidationError, Problem) as exc:
        errors, status = await failed(session, exc, "requests_per_minute")
        return await _limits_page(
            request, member, session, values=values, errors=errors, status=status
        )
    return flash(request, redirect("/ui/settings/limits"), "Saved the usage limits.")
