"""Enforcing usage limits on the run path, correct across workers, without a round trip per run.

**Requests per minute.** The count of a tenant's current minute lives in Postgres (one row per
tenant, the minute by the database's clock, so workers agree on it). A worker does not ask for
one request at a time: it leases a share of the minute (a twentieth of the limit, at most 100)
in one upsert and hands requests out of that lease from memory. Leases never exceed what is
left, so all workers together never admit more than the limit. A lease left unused when the
minute ends is lost, so a tenant may get slightly fewer requests than its limit (at most a
lease per worker); small limits lease one request at a time and are exact. Once the database
says the minute is used up, the worker refuses locally until the minute ends.

**Monthly spend cap.** The month's spend is read once from the runs table, then kept current
in memory: the costs of this worker's runs as they finish (pending until written), and the
costs other workers write, which the recorder announces with NOTIFY in the same transaction
as the runs. A run is refused once spend has reached the cap; runs already in flight finish,
so spend can pass the cap by what was in flight and, on other workers, by what they had not
yet written (at most a flush interval of runs).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.db.notify import publish
from promptlogic.errors import Problem
from promptlogic.runs.service import RunRecord
from promptlogic.usage import service
from promptlogic.usage.service import Limits

SPEND_TOPIC = "usage_spend"
MAX_LEASE = 100

# One statement takes a lease: it starts a new minute, or adds to the current one what is
# left of the limit (up to the lease size); a caller whose minute is already over gets none.
# Every SET expression reads the row as it was, so `granted` is what this call added.
_LEASE = text(
    """
    INSERT INTO usage_rate_windows AS w (tenant_id, window_start, requests, granted)
    VALUES (:tenant_id, date_trunc('minute', now()), LEAST(:lease, :cap), LEAST(:lease, :cap))
    ON CONFLICT (tenant_id) DO UPDATE SET
      granted = CASE
        WHEN w.window_start = excluded.window_start
          THEN LEAST(:lease, GREATEST(:cap - w.requests, 0))
        WHEN w.window_start < excluded.window_start THEN excluded.granted
        ELSE 0 END,
      requests = CASE
        WHEN w.window_start = excluded.window_start
          THEN w.requests + LEAST(:lease, GREATEST(:cap - w.requests, 0))
        WHEN w.window_start < excluded.window_start THEN excluded.requests
        ELSE w.requests END,
      window_start = GREATEST(w.window_start, excluded.window_start)
    RETURNING granted,
      EXTRACT(EPOCH FROM window_start + interval '1 minute' - clock_timestamp()) AS seconds_left
    """
).bindparams(bindparam("lease", type_=Integer()), bindparam("cap", type_=Integer()))


class UsageLimited(Problem):
    """429: the tenant has used what its limits allow for now."""

    status, slug = 429, "usage-limit"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


def lease_size(requests_per_minute: int) -> int:
    return max(1, min(requests_per_minute // 20, MAX_LEASE))


def month_of(moment: datetime) -> date:
    return date(moment.year, moment.month, 1)


def seconds_to_next_month(now: datetime) -> float:
    following = date(now.year + now.month // 12, now.month % 12 + 1, 1)
    return (datetime(following.year, following.month, 1, tzinfo=UTC) - now).total_seconds()


@dataclass(slots=True)
class _Lease:
    """This worker's share of a tenant's current minute."""

    ends_at: float  # time.monotonic()
    left: int
    exhausted: bool  # the whole minute is used up, on every worker


@dataclass(slots=True)
class _Spend:
    month: date
    total: Decimal  # written to the runs table, by any worker


class UsageLimiter:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        is_live: Callable[[], bool] = lambda: True,
        max_tenants: int = 10_000,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._is_live = is_live
        self._max_tenants = max_tenants
        self.worker_id = uuid.uuid4().hex
        self._limits: OrderedDict[uuid.UUID, Limits] = OrderedDict()
        self._leases: dict[uuid.UUID, _Lease] = {}
        self._lease_locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._spend: dict[uuid.UUID, _Spend] = {}
        self._pending: dict[uuid.UUID, Decimal] = {}  # this worker's costs not yet written
        self._generation: dict[uuid.UUID, int] = {}

    async def admit(self, tenant_id: uuid.UUID) -> None:
        """Let one run of the tenant through, or raise `UsageLimited` with `Retry-After`."""
        limits = self._limits.get(tenant_id)
        if limits is None:
            limits = await self._load_limits(tenant_id)
        if limits.monthly_spend_cap is not None:
            await self._check_spend(tenant_id, limits.monthly_spend_cap)
        if limits.requests_per_minute is not None:
            await self._take_request(tenant_id, limits.requests_per_minute)

    # Requests per minute

    async def _take_request(self, tenant_id: uuid.UUID, limit: int) -> None:
        if self._take_from_lease(tenant_id, limit):
            return
        lock = self._lease_locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:  # one lease at a time per tenant; the others then share it
            if self._take_from_lease(tenant_id, limit):
                return
            for _ in range(2):  # a second try when a lease came back for a minute just over
                granted, seconds_left = await self._lease(tenant_id, limit)
                if seconds_left > 0:
                    break
            ends_at = time.monotonic() + max(seconds_left, 0)
            self._leases[tenant_id] = _Lease(ends_at, granted, exhausted=granted == 0)
            if not self._take_from_lease(tenant_id, limit):
                raise self._too_many(limit, max(seconds_left, 1))

    def _take_from_lease(self, tenant_id: uuid.UUID, limit: int) -> bool:
        """True when the lease had a request; raises when the minute is known to be used up."""
        lease = self._leases.get(tenant_id)
        if lease is None:
            return False
        seconds_left = lease.ends_at - time.monotonic()
        if seconds_left <= 0:
            return False
        if lease.left > 0:
            lease.left -= 1
            return True
        if lease.exhausted:
            raise self._too_many(limit, seconds_left)
        return False

    async def _lease(self, tenant_id: uuid.UUID, limit: int) -> tuple[int, float]:
        async with self._sessionmaker() as session, session.begin():
            row = (
                await session.execute(
                    _LEASE,
                    {"tenant_id": tenant_id, "lease": lease_size(limit), "cap": limit},
                )
            ).one()
        return int(row.granted), float(row.seconds_left)

    @staticmethod
    def _too_many(limit: int, retry_after: float) -> UsageLimited:
        return UsageLimited(
            f"This tenant may start {limit} run{'s' if limit != 1 else ''} per minute and has "
            "used them all; retry after the minute ends.",
            retry_after,
        )

    # Monthly spend

    async def _check_spend(self, tenant_id: uuid.UUID, cap: Decimal) -> None:
        now = datetime.now(UTC)
        month = month_of(now)
        spend = self._spend.get(tenant_id)
        total = spend.total if spend is not None and spend.month == month else None
        if total is None:
            total = await self._load_spend(tenant_id, month)
        if total + self._pending.get(tenant_id, Decimal(0)) >= cap:
            raise UsageLimited(
                f"This tenant has reached its monthly spend cap of {cap} USD.",
                seconds_to_next_month(now),
            )

    async def _load_spend(self, tenant_id: uuid.UUID, month: date) -> Decimal:
        generation = self._generation.get(tenant_id, 0)
        async with self._sessionmaker() as session:
            total = await service.spent_this_month(session, tenant_id=tenant_id)
        # A write counted while this read ran may or may not be in it: keep only a clean read.
        if self._generation.get(tenant_id, 0) == generation and self._is_live():
            self._spend[tenant_id] = _Spend(month, total)
        return total

    def month_spend(self, tenant_id: uuid.UUID) -> Decimal | None:
        """What this worker believes the tenant spent this month; None when it does not know."""
        spend = self._spend.get(tenant_id)
        if spend is None or spend.month != month_of(datetime.now(UTC)):
            return None
        return spend.total + self._pending.get(tenant_id, Decimal(0))

    def note_run(self, record: RunRecord) -> None:
        """A run finished on this worker: its cost counts now, before it is written."""
        if record.cost:
            tenant_id = record.tenant_id
            self._pending[tenant_id] = self._pending.get(tenant_id, Decimal(0)) + record.cost

    async def on_write(self, session: AsyncSession, records: Sequence[RunRecord]) -> None:
        """In the recorder's transaction: tell the other workers what the batch cost."""
        for (tenant_id, month), cost in _costs_by_tenant(records).items():
            await publish(
                session,
                SPEND_TOPIC,
                local=False,
                worker=self.worker_id,
                tenant_id=str(tenant_id),
                month=month.isoformat(),
                cost=str(cost),
            )

    def on_written(self, records: Sequence[RunRecord]) -> None:
        """After the recorder's commit: this worker's costs move from pending to written."""
        for (tenant_id, month), cost in _costs_by_tenant(records).items():
            left = self._pending.get(tenant_id, Decimal(0)) - cost
            self._pending[tenant_id] = max(left, Decimal(0))
            self._add_spend(tenant_id, month, cost)

    def on_spend(self, message: dict[str, Any]) -> None:
        """NOTIFY handler: another worker wrote runs that cost something."""
        if message.get("worker") == self.worker_id:
            return
        try:
            tenant_id = uuid.UUID(str(message["tenant_id"]))
            month = date.fromisoformat(str(message["month"]))
            cost = Decimal(str(message["cost"]))
        except (KeyError, ValueError, ArithmeticError):
            self.clear()
            return
        self._add_spend(tenant_id, month, cost)

    def _add_spend(self, tenant_id: uuid.UUID, month: date, cost: Decimal) -> None:
        self._generation[tenant_id] = self._generation.get(tenant_id, 0) + 1
        spend = self._spend.get(tenant_id)
        if spend is not None and spend.month == month:
            spend.total += cost

    # Limits as data

    async def _load_limits(self, tenant_id: uuid.UUID) -> Limits:
        generation = self._generation.get(tenant_id, 0)
        async with self._sessionmaker() as session:
            limits = await service.get_limits(session, tenant_id=tenant_id)
        if self._generation.get(tenant_id, 0) == generation and self._is_live():
            self._limits[tenant_id] = limits
            while len(self._limits) > self._max_tenants:
                evicted, _ = self._limits.popitem(last=False)
                self._forget(evicted)
        return limits

    def on_limits_changed(self, message: dict[str, Any]) -> None:
        """NOTIFY handler: a tenant's limits changed; its lease was sized for the old ones."""
        try:
            tenant_id = uuid.UUID(str(message.get("tenant_id")))
        except ValueError:
            self.clear()
            return
        self._limits.pop(tenant_id, None)
        self._forget(tenant_id)

    def _forget(self, tenant_id: uuid.UUID) -> None:
        self._generation[tenant_id] = self._generation.get(tenant_id, 0) + 1
        self._leases.pop(tenant_id, None)
        self._spend.pop(tenant_id, None)

    def clear(self) -> None:
        """The listener reconnected: anything may have changed meanwhile."""
        for tenant_id in list(self._generation):
            self._generation[tenant_id] += 1
        self._limits.clear()
        self._leases.clear()
        self._spend.clear()


def _costs_by_tenant(records: Sequence[RunRecord]) -> dict[tuple[uuid.UUID, date], Decimal]:
    costs: dict[tuple[uuid.UUID, date], Decimal] = {}
    for record in records:
        if record.cost:
            key = (record.tenant_id, month_of(record.created_at))
            costs[key] = costs.get(key, Decimal(0)) + record.cost
    return costs
