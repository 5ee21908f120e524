"""Write-behind of API keys' last-used times: noted in memory, written in batches.

Authentication stays free of database writes; the times are at most one flush interval old,
and the last batch is written on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.tenancy.models import ApiKey

log = logging.getLogger(__name__)


class KeyUsageRecorder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], interval: float) -> None:
        self._sessionmaker = sessionmaker
        self._interval = interval
        self._pending: dict[uuid.UUID, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def note(self, key_id: uuid.UUID) -> None:
        self._pending[key_id] = datetime.now(UTC)

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        rows = [{"id": key_id, "last_used_at": used_at} for key_id, used_at in batch.items()]
        try:
            async with self._sessionmaker() as session, session.begin():
                # ORM bulk UPDATE by primary key: one executemany for the whole batch.
                await session.execute(update(ApiKey), rows)
        except Exception:
            log.warning("could not record API key usage; will retry", exc_info=True)
            for key_id, used_at in batch.items():
                self._pending.setdefault(key_id, used_at)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="key-usage-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
