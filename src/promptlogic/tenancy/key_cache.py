"""API keys kept in memory per worker, so an authenticated request makes no database trip.

Entries never expire by time: a revocation reaches every worker through NOTIFY and drops the
entry. A load that raced with an invalidation is not stored (the generation check), so a key
revoked while it was being read cannot come back as valid.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from promptlogic.tenancy.roles import Scope


@dataclass(frozen=True, slots=True)
class CachedKey:
    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    name: str
    scopes: frozenset[Scope]
    secret_hash: str
    expires_at: datetime | None
    revoked: bool


class ApiKeyCache:
    """A bounded LRU map from key prefix to the key's record."""

    def __init__(self, max_size: int, is_live: Callable[[], bool] = lambda: True) -> None:
        self._entries: OrderedDict[str, CachedKey] = OrderedDict()
        self._max_size = max_size
        self._is_live = is_live
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, prefix: str) -> CachedKey | None:
        entry = self._entries.get(prefix)
        if entry is not None:
            self._entries.move_to_end(prefix)
        return entry

    def put(self, prefix: str, entry: CachedKey, *, loaded_at_generation: int) -> None:
        """Store `entry` unless an invalidation happened since it was read from the database,
        or invalidations cannot reach this worker now (`is_live` false)."""
        if loaded_at_generation != self.generation or not self._is_live():
            return
        self._entries[prefix] = entry
        self._entries.move_to_end(prefix)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)

    def drop(self, prefix: str) -> None:
        self.generation += 1
        self._entries.pop(prefix, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
