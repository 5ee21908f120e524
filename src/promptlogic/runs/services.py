"""The run services of a process, built one way: the web app and the worker (which runs
evals) make runs alike, from the same caches kept by the same notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.context.cache import RecordCache
from promptlogic.context.service import CONTEXT_TOPIC
from promptlogic.db.notify import ChangeListener
from promptlogic.knowledge.binding import searcher as knowledge_searcher
from promptlogic.knowledge.embeddings import Embedders
from promptlogic.prompts.bindings import Binder
from promptlogic.prompts.cache import PlanCache
from promptlogic.prompts.service import PROMPT_TOPIC
from promptlogic.providers.catalog import MODEL_PRICE_TOPIC, PriceBook
from promptlogic.providers.clients import ProviderRegistry
from promptlogic.rendering import Renderer
from promptlogic.rules.cache import RulesCache
from promptlogic.rules.service import RULES_TOPIC
from promptlogic.runs.pipeline import RunServices
from promptlogic.runs.recorder import RunRecorder
from promptlogic.settings import Settings
from promptlogic.usage.limiter import SPEND_TOPIC, UsageLimiter
from promptlogic.usage.service import LIMITS_TOPIC


@asynccontextmanager
async def open_run_services(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    listener: ChangeListener,
    providers: ProviderRegistry,
) -> AsyncIterator[RunServices]:
    """Caches subscribed to `listener` (start it afterwards), the render workers and the run
    recorder; on exit the recorder writes what it holds, then the workers stop."""
    live = lambda: listener.connected  # noqa: E731 - caches store only while notified
    plans = PlanCache(is_live=live)
    prices = PriceBook(sessionmaker, is_live=live)
    limits = UsageLimiter(sessionmaker, is_live=live)
    records = RecordCache(sessionmaker, is_live=live)
    rules = RulesCache(sessionmaker, is_live=live)
    listener.subscribe(PROMPT_TOPIC, plans.on_prompt_changed)
    listener.subscribe(MODEL_PRICE_TOPIC, prices.on_price_changed)
    listener.subscribe(LIMITS_TOPIC, limits.on_limits_changed)
    listener.subscribe(SPEND_TOPIC, limits.on_spend)
    listener.subscribe(CONTEXT_TOPIC, records.on_changed)
    listener.subscribe(RULES_TOPIC, rules.on_changed)
    for cache in (plans, prices, limits, records, rules):  # a reconnect drops everything
        listener.on_reset(cache.clear)
    binder = Binder(
        records=records,
        searcher=knowledge_searcher(sessionmaker, Embedders(providers)),
        rules=rules,
    )
    renderer = Renderer(workers=settings.render_workers)
    await renderer.start()
    try:
        recorder = RunRecorder(
            sessionmaker,
            interval=settings.run_flush_seconds,
            durable=settings.run_records == "durable",
            hooks=limits,
        )
        await recorder.start()
        try:
            yield RunServices(
                sessions=sessionmaker,
                plans=plans,
                renderer=renderer,
                providers=providers,
                prices=prices,
                recorder=recorder,
                limits=limits,
                binder=binder,
            )
        finally:
            await recorder.stop()
    finally:
        await renderer.close()
