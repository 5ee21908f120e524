"""Response bodies of the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ActorOut(BaseModel):
    type: str
    id: str | None
    name: str


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tenant_id: uuid.UUID
    actor: ActorOut
    action: str
    target_type: str
    target_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def of(cls, event: Any) -> AuditEventOut:
        return cls(
            id=event.id,
            tenant_id=event.tenant_id,
            actor=ActorOut(type=event.actor_type, id=event.actor_id, name=event.actor_name),
            action=event.action,
            target_type=event.target_type,
            target_id=event.target_id,
            before=event.before,
            after=event.after,
            created_at=event.created_at,
        )
