"""Record and read the audit trail. Writes record in the same transaction as the change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit.models import AuditEvent
from promptlogic.pagination import decode_cursor, paginate


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: an API key, a signed-in user, or a platform operator at the CLI."""

    kind: str
    id: str | None
    name: str


OPERATOR = Actor(kind="operator", id=None, name="promptlogic cli")


async def record(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add one audit event to the session's transaction."""
    session.add(
        AuditEvent(
            tenant_id=tenant_id,
            actor_type=actor.kind,
            actor_id=actor.id,
            actor_name=actor.name,
            action=action,
            target_type=target_type,
            target_id=target_id,
            before=before,
            after=after,
        )
    )


async def list_events(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    limit: int,
    cursor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
) -> tuple[list[AuditEvent], str | None]:
    """A page of the tenant's events, newest first, and the cursor of the next page."""
    statement = AuditEvent.for_tenant(tenant_id).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if cursor is not None:
        (last_id,) = decode_cursor(cursor, int)
        statement = statement.where(AuditEvent.id < last_id)
    if action is not None:
        statement = statement.where(AuditEvent.action == action)
    if target_type is not None:
        statement = statement.where(AuditEvent.target_type == target_type)
    if target_id is not None:
        statement = statement.where(AuditEvent.target_id == target_id)
    events = list((await session.scalars(statement)).all())
    return paginate(events, limit, lambda event: (event.id,))
