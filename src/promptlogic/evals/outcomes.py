"""An eval's stored results as the summary, the comparison and the gates read them."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.evals.models import EvalResult
from promptlogic.evals.summary import Outcome


async def outcomes_of(
    session: AsyncSession, tenant_id: uuid.UUID, eval_id: uuid.UUID
) -> list[Outcome]:
    rows = await session.scalars(
        EvalResult.for_tenant(tenant_id)
        .where(EvalResult.eval_id == eval_id)
        .order_by(EvalResult.id)
    )
    return [
        Outcome(
            case_id=str(row.case_id),
            attempt=row.attempt,
            passed=row.passed,
            score=row.score,
            scores=row.scores,
            latency_ms=row.latency_ms,
            cost=None if row.cost is None else float(row.cost),
            failed_run=row.error is not None,
        )
        for row in rows
    ]
