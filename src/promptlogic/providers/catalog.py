"""The model catalog: prices per million tokens, seeded globally and overridden per tenant.

A tenant's effective catalog is the seeded rows overlaid by its own. `PriceBook` keeps each
tenant's effective prices in memory per worker, so pricing a run costs no database round trip;
a price change publishes on `model_price` and every worker drops that tenant's prices.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, nulls_last
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.db.notify import publish
from promptlogic.errors import NotFound
from promptlogic.pagination import decode_cursor, paginate
from promptlogic.providers.models import ModelPrice

MODEL_PRICE_TOPIC = "model_price"
MILLION = Decimal(1_000_000)
# Providers answer with dated snapshots (gpt-4o-2024-08-06) or aliases (claude-3-5-haiku-latest)
# of the names the catalog lists.
_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    input_per_million: Decimal
    output_per_million: Decimal
    source: str  # "catalog" or "tenant"
    updated_at: datetime


def _entry(row: ModelPrice) -> ModelEntry:
    return ModelEntry(
        name=row.model,
        input_per_million=row.input_per_million,
        output_per_million=row.output_per_million,
        source="catalog" if row.tenant_id is None else "tenant",
        updated_at=row.updated_at,
    )


def _effective(tenant_id: uuid.UUID) -> Any:
    """One row per model: the tenant's override when it has one, else the catalog's."""
    return (
        ModelPrice.visible_to(tenant_id)
        .ext(distinct_on(ModelPrice.model))
        .order_by(ModelPrice.model, nulls_last(ModelPrice.tenant_id))
    )


async def list_models(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int, cursor: str | None = None
) -> tuple[list[ModelEntry], str | None]:
    """A page of the tenant's effective catalog, by model name."""
    statement = _effective(tenant_id).limit(limit + 1)
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(ModelPrice.model > after)
    rows = [_entry(row) for row in (await session.scalars(statement)).all()]
    return paginate(rows, limit, lambda entry: (entry.name,))


async def set_price(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    model: str,
    input_per_million: Decimal,
    output_per_million: Decimal,
    actor: Actor,
) -> ModelEntry:
    """Set the tenant's price for `model`, overriding the catalog or adding a model to it."""
    before = await session.scalar(
        ModelPrice.visible_to(tenant_id)
        .where(ModelPrice.model == model)
        .order_by(nulls_last(ModelPrice.tenant_id))
        .limit(1)
    )
    before_summary = _price_summary(before) if before is not None else None
    now = datetime.now(UTC)
    values = {"input_per_million": input_per_million, "output_per_million": output_per_million}
    row = await session.scalar(
        insert(ModelPrice)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, model=model, updated_at=now, **values)
        .on_conflict_do_update(
            constraint="uq_model_prices_tenant_model", set_={**values, "updated_at": now}
        )
        .returning(ModelPrice)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="model_price.set",
        target_type="model",
        target_id=model,
        before=before_summary,
        after=_price_summary(row),
    )
    await publish(session, MODEL_PRICE_TOPIC, tenant_id=str(tenant_id), model=model)
    return _entry(row)


async def remove_price(
    session: AsyncSession, *, tenant_id: uuid.UUID, model: str, actor: Actor
) -> None:
    """Drop the tenant's own price for `model`; the catalog's applies again, if any."""
    row = await session.scalar(
        delete(ModelPrice)
        .where(ModelPrice.tenant_id == tenant_id, ModelPrice.model == model)
        .returning(ModelPrice)
    )
    if row is None:
        raise NotFound(f"No price of your own for model `{model}`.")
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="model_price.remove",
        target_type="model",
        target_id=model,
        before=_price_summary(row),
    )
    await publish(session, MODEL_PRICE_TOPIC, tenant_id=str(tenant_id), model=model)


def _price_summary(row: ModelPrice) -> dict[str, Any]:
    return {
        "input_per_million": str(row.input_per_million),
        "output_per_million": str(row.output_per_million),
        "source": "catalog" if row.tenant_id is None else "tenant",
    }


def catalog_name(model: str, prices: dict[str, tuple[Decimal, Decimal]]) -> str | None:
    """The catalog entry `model` is priced by: itself, or the name without a snapshot suffix."""
    if model in prices:
        return model
    base = _SNAPSHOT_SUFFIX.sub("", model)
    return base if base in prices else None


class PriceBook:
    """Each tenant's effective prices, loaded once per worker and dropped on NOTIFY."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        max_tenants: int = 10_000,
        is_live: Callable[[], bool] = lambda: True,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._tenants: OrderedDict[uuid.UUID, dict[str, tuple[Decimal, Decimal]]] = OrderedDict()
        self._max_tenants = max_tenants
        self._is_live = is_live
        self.generation = 0

    async def prices_of(self, tenant_id: uuid.UUID) -> dict[str, tuple[Decimal, Decimal]]:
        prices = self._tenants.get(tenant_id)
        if prices is not None:
            self._tenants.move_to_end(tenant_id)
            return prices
        generation = self.generation
        async with self._sessionmaker() as session:
            rows = (await session.scalars(_effective(tenant_id))).all()
        prices = {row.model: (row.input_per_million, row.output_per_million) for row in rows}
        if generation == self.generation and self._is_live():
            self._tenants[tenant_id] = prices
            while len(self._tenants) > self._max_tenants:
                self._tenants.popitem(last=False)
        return prices

    async def cost_of(
        self, tenant_id: uuid.UUID, model: str, input_tokens: int, output_tokens: int
    ) -> Decimal | None:
        """The cost in USD of a call, or None when the model has no price for this tenant."""
        prices = await self.prices_of(tenant_id)
        name = catalog_name(model, prices)
        if name is None:
            return None
        input_price, output_price = prices[name]
        return (input_tokens * input_price + output_tokens * output_price) / MILLION

    def on_price_changed(self, message: dict[str, Any]) -> None:
        """NOTIFY handler for `model_price`: drop one tenant's prices, or all of them."""
        self.generation += 1
        try:
            self._tenants.pop(uuid.UUID(str(message.get("tenant_id"))), None)
        except ValueError:
            self._tenants.clear()

    def clear(self) -> None:
        self.generation += 1
        self._tenants.clear()
