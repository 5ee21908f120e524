"""Per-worker cache of render plans: what `name@label` resolves to, with its includes.

A plan depends on the prompt's labels and on those of every context template it includes, so a
change to any prompt of a tenant (published through NOTIFY) drops that tenant's plans. Logic
changes are rare next to renders; dropping a tenant's plans is cheap and never stale. A plan
loaded while an invalidation happened is not stored (the generation check), and nothing is
stored while the change listener is disconnected.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from promptlogic.rules.run_limits import NO_POLICY, RunLimits

Selector = tuple[str, str | int]  # ("label", "production") or ("version", 3)


@dataclass(frozen=True, slots=True)
class VersionUsed:
    prompt: str
    version: int


@dataclass(frozen=True, slots=True)
class RenderPlan:
    """Everything needed to render one prompt version, as plain immutable data."""

    prompt: str
    version: int
    label: str | None
    roles: tuple[str, ...]
    templates: tuple[str, ...]
    includes: tuple[tuple[str, str], ...]  # include reference → resolved template source
    input_schema: dict[str, Any]
    versions_used: tuple[VersionUsed, ...]
    model: dict[str, Any]
    response_format: dict[str, Any] | None
    # The label's traffic split, ((version, weight), …), when the plan is a split label's.
    split: tuple[tuple[int, int], ...] | None = None
    # The version's context bindings (see binding_schemas.py), bound before rendering.
    bindings: tuple[dict[str, Any], ...] = ()
    # What the prompt's rules policy lets a `rules` binding bind.
    rule_limits: RunLimits = NO_POLICY


class PlanCache:
    def __init__(self, max_size: int = 10_000, is_live: Callable[[], bool] = lambda: True) -> None:
        self._plans: OrderedDict[tuple[uuid.UUID, str, Selector], RenderPlan] = OrderedDict()
        self._max_size = max_size
        self._is_live = is_live
        self.generation = 0

    def __len__(self) -> int:
        return len(self._plans)

    def get(self, tenant_id: uuid.UUID, name: str, selector: Selector) -> RenderPlan | None:
        key = (tenant_id, name, selector)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
        return plan

    def put(
        self,
        tenant_id: uuid.UUID,
        name: str,
        selector: Selector,
        plan: RenderPlan,
        *,
        loaded_at_generation: int,
    ) -> None:
        """Store `plan` unless it raced with an invalidation or none could reach us now."""
        if loaded_at_generation != self.generation or not self._is_live():
            return
        key = (tenant_id, name, selector)
        self._plans[key] = plan
        self._plans.move_to_end(key)
        while len(self._plans) > self._max_size:
            self._plans.popitem(last=False)

    def drop_tenant(self, tenant_id: uuid.UUID) -> None:
        self.generation += 1
        for key in [key for key in self._plans if key[0] == tenant_id]:
            del self._plans[key]

    def clear(self) -> None:
        self.generation += 1
        self._plans.clear()

    def on_prompt_changed(self, message: dict[str, Any]) -> None:
        """NOTIFY handler for the `prompt` topic."""
        try:
            self.drop_tenant(uuid.UUID(str(message.get("tenant_id"))))
        except ValueError:
            self.clear()
