"""A scope's live rules as the run path reads them: from memory, invalidated by NOTIFY.

Every run of a version with a `rules` binding needs its scope's rules (a prompt's, or a set's
such as `account-42`); with the cache it makes no database round trip for a scope read before,
and a rule change reaches the next run on every worker through the `rules` notification, with
no new prompt version. Empty scopes are cached too (a first rule is announced like any change).
Nothing is stored while the listener is down, and a load that raced an invalidation is not
stored (the generation check), as with the record and plan caches.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.rules.service import rules_for

Scope = tuple[str, str]  # ("prompt", name) or ("set", name)


class RuleSource(Protocol):
    """Where bindings read a scope's live rules: the cache, or a preview's draft over it."""

    async def get(self, tenant_id: uuid.UUID, scope: Scope) -> tuple[dict[str, Any], ...]: ...


class RulesCache:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        max_size: int = 20_000,
        is_live: Callable[[], bool] = lambda: True,
    ) -> None:
        self._sessions = sessions
        self._entries: OrderedDict[tuple[uuid.UUID, str, str], tuple[dict[str, Any], ...]] = (
            OrderedDict()
        )
        self._max_size = max_size
        self._is_live = is_live
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, tenant_id: uuid.UUID, scope: Scope) -> tuple[dict[str, Any], ...]:
        """The scope's live rules in the order they apply (shared: read them, never change)."""
        entry_key = (tenant_id, *scope)
        cached = self._entries.get(entry_key)
        if cached is not None:
            self._entries.move_to_end(entry_key)
            return cached
        generation = self.generation
        kind, name = scope
        async with self._sessions() as session:
            loaded = tuple(
                await rules_for(
                    session,
                    tenant_id,
                    prompt=name if kind == "prompt" else None,
                    set=name if kind == "set" else None,
                )
            )
        if generation == self.generation and self._is_live():
            self._entries[entry_key] = loaded
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)
        return loaded

    def on_changed(self, payload: dict[str, Any]) -> None:
        """A scope's rules changed in some worker (without a scope: all of the tenant's)."""
        self.generation += 1
        try:
            tenant_id = uuid.UUID(str(payload.get("tenant_id")))
        except ValueError:
            self._entries.clear()
            return
        for kind in ("prompt", "set"):
            if isinstance(payload.get(kind), str):
                self._entries.pop((tenant_id, kind, payload[kind]), None)
                return
        for entry_key in [k for k in self._entries if k[0] == tenant_id]:
            del self._entries[entry_key]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
