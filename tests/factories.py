"""Small factories for test data, built through the same services the app uses."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit.service import OPERATOR
from promptlogic.db.engine import commit
from promptlogic.runs.service import RunRecord, write_runs
from promptlogic.tenancy import service
from promptlogic.tenancy.models import ApiKey, Tenant


@dataclass
class KeyFixture:
    key: ApiKey
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_tenant(session: AsyncSession, slug: str | None = None) -> Tenant:
    slug = slug or f"t-{secrets.token_hex(4)}"
    tenant = await service.create_tenant(session, slug=slug, name=f"Tenant {slug}")
    await commit(session)
    return tenant


async def make_key(
    session: AsyncSession,
    tenant: Tenant,
    scopes: list[str] | None = None,
    *,
    name: str = "test key",
    expires_at: datetime | None = None,
) -> KeyFixture:
    created = await service.create_api_key(
        session,
        tenant_id=tenant.id,
        name=name,
        scopes=scopes or ["admin"],
        actor=OPERATOR,
        expires_at=expires_at,
    )
    await commit(session)
    return KeyFixture(key=created.key, token=created.plaintext)


async def make_run(session: AsyncSession, tenant: Tenant, **fields: Any) -> RunRecord:
    """A succeeded run of `tenant`'s prompt `triage`, written directly (no recorder)."""
    values: dict[str, Any] = {
        "prompt": "triage",
        "version": 1,
        "label": "production",
        "principal_type": "api_key",
        "principal_name": "app",
        "status": "succeeded",
        "latency_ms": 12,
        "inputs": {"ticket": "printer on fire"},
        "messages": [{"role": "user", "content": "Triage: printer on fire"}],
        "output": '{"priority": "high"}',
        "parsed": {"priority": "high"},
        "model": "gpt-4o-mini",
        "provider": "offline",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost": Decimal("0.0000045"),
        **fields,
    }
    record = RunRecord(tenant_id=tenant.id, **values)
    await write_runs(session, [record])
    await commit(session)
    return record
