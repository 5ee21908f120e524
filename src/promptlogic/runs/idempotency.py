"""Idempotency-Key: a retried request gets the first answer, never a second model call or eval.

For a run, the key is claimed in its own committed transaction before the model is called, so a
second request with the same key, on any worker, sees it at once: the same body while the first
is running is a 409, a different body a 422, and once the first has answered, its response is
replayed. Streamed runs are not replayed (their answer was a stream).

A request whose work is one transaction (starting an eval) claims the key and stores its answer
in that transaction (`take_in`, `store_in`): a concurrent repeat waits on the claim's row and
then replays the answer, and a request that fails leaves no claim behind.

Keys are one namespace per tenant and are kept for 24 hours.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.errors import Conflict, InvalidInput
from promptlogic.runs.models import IdempotencyKey

WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 200


def fingerprint(path: str, body: Any) -> str:
    """What makes two requests the same request."""
    canonical = json.dumps({"path": path, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def checked_key(key: str) -> str:
    key = key.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput.field(
            "header.Idempotency-Key", f"must be 1-{MAX_KEY_LENGTH} printable characters"
        )
    return key


@dataclass(frozen=True, slots=True)
class Claim:
    """One tenant's Idempotency-Key, taken for one request."""

    sessionmaker: async_sessionmaker[AsyncSession]
    tenant_id: uuid.UUID
    key: str

    async def take(self, request_hash: str) -> dict[str, Any] | None:
        """Claim the key; return the stored response when it was already answered."""
        async with self.sessionmaker() as session, session.begin():
            return await take_in(session, self.tenant_id, self.key, request_hash)

    async def store(self, response: dict[str, Any]) -> None:
        """Keep the answer, to replay it for a repeat of the request."""
        async with self.sessionmaker() as session, session.begin():
            await store_in(session, self.tenant_id, self.key, response)

    async def release(self) -> None:
        """Give the key back: a request that failed may be retried with it."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(delete(IdempotencyKey).where(*self._row()))

    def _row(self) -> tuple[Any, ...]:
        return _row(self.tenant_id, self.key)


async def take_in(
    session: AsyncSession, tenant_id: uuid.UUID, key: str, request_hash: str
) -> dict[str, Any] | None:
    """Claim `key` in `session`'s transaction; the stored response when it was already
    answered. 422 when it was used for another request, 409 while that one is running."""
    now = datetime.now(UTC)
    await session.execute(delete(IdempotencyKey).where(*_row(tenant_id, key), _expired(now)))
    inserted = await session.scalar(
        insert(IdempotencyKey)
        .values(tenant_id=tenant_id, key=key, request_hash=request_hash, created_at=now)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    if inserted is not None:
        return None
    existing = await session.scalar(select(IdempotencyKey).where(*_row(tenant_id, key)))
    assert existing is not None
    if existing.request_hash != request_hash:
        raise InvalidInput.field(
            "header.Idempotency-Key", "was already used with a different request body"
        )
    if existing.response is None:
        raise Conflict("A request with this Idempotency-Key is still running; retry later.")
    return existing.response


async def store_in(
    session: AsyncSession, tenant_id: uuid.UUID, key: str, response: dict[str, Any]
) -> None:
    """Keep the answer of the request that claimed `key`, in `session`'s transaction."""
    await session.execute(
        update(IdempotencyKey).where(*_row(tenant_id, key)).values(response=response)
    )


def _row(tenant_id: uuid.UUID, key: str) -> tuple[Any, ...]:
    return (IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key)


def _expired(now: datetime) -> Any:
    return IdempotencyKey.created_at < now - WINDOW
