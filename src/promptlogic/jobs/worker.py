"""The worker: runs ingestion and eval jobs from the queue, a few at a time, until told to stop.

A job whose worker died (killed, machine lost) stops getting heartbeats; once they are older than
`stalled_after`, any worker picks it up again, and `ingest_document` starts the document over.
On SIGTERM the worker takes no new job and finishes the ones it runs (a supervisor that kills it
meanwhile leaves them to the heartbeat rule). At start, a sweep enqueues every document still
`pending` or `processing` without a live job (one whose job failed on a database error, or that
predates the queue); a document that has one is skipped by the job's dedupe key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from pgqueuer.core.qm import QueueManager
from pgqueuer.domain.models import Job
from pgqueuer.domain.types import QueueExecutionMode
from sqlalchemy import select

from promptlogic.db.engine import create_engine, create_sessionmaker
from promptlogic.db.migrations import ensure_at_head
from promptlogic.db.notify import LISTENER_KEY, ChangeListener, asyncpg_dsn
from promptlogic.evals.runner import EVAL, EvalJob, run_eval
from promptlogic.jobs.queue import INGEST, IngestJob, channel, enqueue, queries_on
from promptlogic.knowledge.embeddings import Embedders
from promptlogic.knowledge.ingestion import Sessionmaker, ingest_document
from promptlogic.knowledge.models import Document
from promptlogic.providers.clients import ProviderRegistry
from promptlogic.providers.secrets import SecretBox
from promptlogic.providers.service import PROVIDER_TOPIC
from promptlogic.runs.pipeline import RunServices
from promptlogic.runs.services import open_run_services
from promptlogic.settings import Settings

log = logging.getLogger(__name__)

SWEEP_BATCH = 1000


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int = 2  # jobs of this worker at a time (CPU and provider quota)
    stalled_after: timedelta = timedelta(seconds=30)  # a job without heartbeat is picked again
    poll: timedelta = timedelta(seconds=10)  # NOTIFY wakes it sooner on a new job
    sweep: bool = True


async def run_worker(
    sessionmaker: Sessionmaker,
    embedders: Embedders,
    database_url: str,
    options: WorkerOptions = WorkerOptions(),
    *,
    shutdown: asyncio.Event | None = None,
    drain: bool = False,
    services: RunServices | None = None,
) -> None:
    """Run jobs until `shutdown` is set (or, with `drain`, until the queue is empty and the
    jobs taken have ended). The queue has a connection of its own: it LISTENs. Evals are run
    only by a worker given the run `services`."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        queries = queries_on(connection)
        if options.sweep:
            await sweep(sessionmaker, queries)
        manager = QueueManager(queries, channel=channel())
        if shutdown is not None:
            manager.shutdown = shutdown
        slots = asyncio.Semaphore(options.concurrency)

        @manager.entrypoint(INGEST)
        async def ingest(job: Job) -> None:
            work = IngestJob.decode(job.payload)
            async with slots:
                status = await ingest_document(
                    sessionmaker, embedders, work.tenant_id, work.collection_id, work.document_id
                )
            log.info("document %s ingested: %s", work.document_id, status)

        if services is not None:

            @manager.entrypoint(EVAL)
            async def evaluate(job: Job) -> None:
                work = EvalJob.decode(job.payload)
                async with slots:
                    status = await run_eval(services, work.tenant_id, work.eval_id)
                log.info("eval %s: %s", work.eval_id, status)

        await manager.run(
            dequeue_timeout=timedelta(seconds=0.2) if drain else options.poll,
            batch_size=1,
            # PgQueuer's cap is at least twice the batch; `slots` keeps a cap of 1 exact.
            max_concurrent_tasks=max(options.concurrency, 2),
            mode=QueueExecutionMode.drain if drain else QueueExecutionMode.continuous,
            heartbeat_timeout=options.stalled_after,
            log_aggregation_interval=timedelta(0) if drain else timedelta(seconds=30),
        )
    finally:
        await connection.close()


async def sweep(sessionmaker: Sessionmaker, queries: object) -> int:
    """Enqueue every document waiting for an ingestion, of every tenant (a system task: the
    rows only yield ids for jobs, and each job reads its document by tenant)."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(
                    Document.tenant_id, Document.collection_id, Document.id, Document.generation
                ).where(Document.status.in_(("pending", "processing")))
            )
        ).all()
        await session.rollback()
    jobs = [IngestJob(*row) for row in rows]
    for start in range(0, len(jobs), SWEEP_BATCH):
        await enqueue(queries, jobs[start : start + SWEEP_BATCH])  # type: ignore[arg-type]
    if jobs:
        log.info("sweep: %d documents waiting for an ingestion", len(jobs))
    return len(jobs)


@dataclass(frozen=True, slots=True)
class WorkerResources:
    sessionmaker: Sessionmaker
    embedders: Embedders
    services: RunServices


@asynccontextmanager
async def worker_resources(settings: Settings) -> AsyncIterator[WorkerResources]:
    """What jobs need, as the web process builds it: a database at head, provider connections
    and the run services (for evals), their caches kept by NOTIFY."""
    database_url = settings.database_url or ""
    async with AsyncExitStack() as resources:
        engine = create_engine(settings)
        resources.push_async_callback(engine.dispose)
        await ensure_at_head(engine)
        listener = ChangeListener(database_url)
        sessionmaker = create_sessionmaker(engine, info={LISTENER_KEY: listener})
        providers = ProviderRegistry(
            sessionmaker,
            SecretBox(settings.resolved_secret_key()),
            settings,
            is_live=lambda: listener.connected,
        )
        listener.subscribe(PROVIDER_TOPIC, providers.on_provider_changed)
        listener.on_reset(providers.clear)
        resources.push_async_callback(providers.aclose)
        services = await resources.enter_async_context(
            open_run_services(settings, sessionmaker, listener, providers)
        )
        await listener.start()
        resources.push_async_callback(listener.stop)
        yield WorkerResources(sessionmaker, Embedders(providers), services)
