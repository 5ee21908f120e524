"""Context records as the run path reads them: from memory, invalidated by NOTIFY.

A version that binds `customers/{{ customer_id }}` reads that record on every run; with the
cache a run makes no database round trip for a record read before, and a change reaches every
worker through the `context_records` notification. Misses are cached too (a record created
later is announced like any change). Nothing is stored while the listener is down, and a load
that raced an invalidation is not stored (the generation check), as with the plan cache.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.context.service import get_records

RecordKey = tuple[str, str]  # (namespace, key)


@dataclass(frozen=True, slots=True)
class CachedRecord:
    value: dict[str, Any]  # shared between runs: read it, never change it
    version: int


class RecordCache:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        max_size: int = 50_000,
        is_live: Callable[[], bool] = lambda: True,
    ) -> None:
        self._sessions = sessions
        self._entries: OrderedDict[tuple[uuid.UUID, str, str], CachedRecord | None] = OrderedDict()
        self._max_size = max_size
        self._is_live = is_live
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(
        self, tenant_id: uuid.UUID, keys: Sequence[RecordKey]
    ) -> dict[RecordKey, CachedRecord | None]:
        """Each requested record (None when it does not exist); one query for all the misses."""
        found: dict[RecordKey, CachedRecord | None] = {}
        missing: list[RecordKey] = []
        for namespace, key in dict.fromkeys(keys):
            entry_key = (tenant_id, namespace, key)
            if entry_key in self._entries:
                self._entries.move_to_end(entry_key)
                found[(namespace, key)] = self._entries[entry_key]
            else:
                missing.append((namespace, key))
        if not missing:
            return found
        generation = self.generation
        async with self._sessions() as session:
            rows = await get_records(session, tenant_id=tenant_id, keys=missing)
        for record_key in missing:
            row = rows.get(record_key)
            loaded = None if row is None else CachedRecord(row.value, row.version)
            found[record_key] = loaded
            if generation == self.generation and self._is_live():
                self._store((tenant_id, *record_key), loaded)
        return found

    def _store(self, entry_key: tuple[uuid.UUID, str, str], entry: CachedRecord | None) -> None:
        self._entries[entry_key] = entry
        self._entries.move_to_end(entry_key)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)

    def on_changed(self, payload: dict[str, Any]) -> None:
        """A record (or, without `key`, a namespace's records) changed in some worker."""
        self.generation += 1
        try:
            tenant_id = uuid.UUID(str(payload.get("tenant_id")))
        except ValueError:
            self._entries.clear()
            return
        namespace = payload.get("namespace")
        keys = payload.get("keys")
        if keys is None and payload.get("key") is not None:
            keys = [payload["key"]]
        if keys is not None and namespace is not None:
            for key in keys:
                self._entries.pop((tenant_id, namespace, key), None)
            return
        stale = [k for k in self._entries if k[0] == tenant_id and namespace in (None, k[1])]
        for entry_key in stale:
            del self._entries[entry_key]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
