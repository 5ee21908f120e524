"""Run records: the record the run pipeline hands over, writing batches, reading them back.

No HTTP here. Writing is the recorder's business (see recorder.py); reads are tenant-scoped
through `Run.for_tenant`, so another tenant's run is simply not found.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.errors import NotFound
from promptlogic.pagination import decode_cursor, invalid_cursor, paginate
from promptlogic.runs.models import Run


@dataclass(slots=True)
class RunRecord:
    """Everything a run leaves behind, as the pipeline built it (nothing here is a secret).

    `id` and `created_at` default to now so a record can be made the moment a run starts and
    its id returned before the row exists.
    """

    tenant_id: uuid.UUID
    prompt: str
    principal_type: str
    principal_name: str
    status: str
    latency_ms: int
    principal_id: str | None = None
    version: int | None = None
    label: str | None = None
    arm: str | None = None
    versions_used: list[dict[str, Any]] = field(default_factory=list)
    bound: list[dict[str, Any]] = field(default_factory=list)
    end_user: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    messages: list[Any] | None = None
    output: str | None = None
    parsed: Any = None
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: Decimal | None = None
    time_to_first_token_ms: int | None = None
    repaired: bool = False
    finish_reason: str | None = None  # why the model stopped; answered, not stored
    error: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, Any]:
        """The record as column values of `runs` (built in the writer, off the hot path)."""
        values = {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]
        values["meta"] = values.pop("metadata")
        del values["finish_reason"]
        return values


async def write_runs(session: AsyncSession, records: Sequence[RunRecord]) -> None:
    """Insert `records` in one statement (an executemany), in the caller's transaction.

    A run already written is skipped: a batch retried after a commit whose acknowledgement was
    lost must not fail on its own rows.
    """
    statement = insert(Run).on_conflict_do_nothing(index_elements=[Run.id])
    await session.execute(statement, [record.row() for record in records])


async def get_run(session: AsyncSession, *, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    run = await session.scalar(Run.for_tenant(tenant_id).where(Run.id == run_id))
    if run is None:
        raise NotFound(f"No run with id `{run_id}`.")
    return run


@dataclass(frozen=True, slots=True)
class RunFilters:
    prompt: str | None = None
    version: int | None = None
    label: str | None = None
    status: str | None = None
    end_user: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    rule: uuid.UUID | None = None  # runs that applied this tenant rule (any revision)


def _position(cursor: str) -> tuple[datetime, uuid.UUID]:
    created_at, run_id = decode_cursor(cursor, str, str)
    try:
        position = datetime.fromisoformat(created_at), uuid.UUID(run_id)
    except ValueError:
        raise invalid_cursor() from None
    if position[0].tzinfo is None:
        raise invalid_cursor()
    return position


async def list_runs(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    filters: RunFilters,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Run], str | None]:
    """A page of the tenant's runs, newest first, and the cursor of the next page."""
    statement = (
        Run.for_tenant(tenant_id).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit + 1)
    )
    if cursor is not None:
        statement = statement.where(tuple_(Run.created_at, Run.id) < _position(cursor))
    for column, value in (
        (Run.prompt, filters.prompt),
        (Run.version, filters.version),
        (Run.label, filters.label),
        (Run.status, filters.status),
        (Run.end_user, filters.end_user),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if filters.rule is not None:
        applied = [{"source": "rules", "rules": [{"id": str(filters.rule)}]}]
        statement = statement.where(Run.bound.contains(applied))
    if filters.created_after is not None:
        statement = statement.where(Run.created_at >= filters.created_after)
    if filters.created_before is not None:
        statement = statement.where(Run.created_at < filters.created_before)
    runs = list((await session.scalars(statement)).all())
    return paginate(runs, limit, lambda run: (run.created_at.isoformat(), str(run.id)))
