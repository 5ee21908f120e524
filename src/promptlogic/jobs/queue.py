"""The job queue: PgQueuer's tables in the `pgqueuer` schema of our own database.

PgQueuer works on asyncpg, the driver we already use, so a job is enqueued on the request's own
connection inside its transaction: the document row and its job commit together or not at all.
Its tables live in a schema of their own, out of the way of our models (Alembic's comparison and
the tests' TRUNCATE look at `public` only); the `job_queue` migration installs them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
from pgqueuer.adapters.persistence.qb import (
    QueryBuilderEnvironment,
    QueryQueueBuilder,
    QuerySchedulerBuilder,
)
from pgqueuer.adapters.persistence.queries import Queries
from pgqueuer.domain.settings import DBSettings
from pgqueuer.domain.types import Channel
from sqlalchemy.ext.asyncio import AsyncSession

SCHEMA = "pgqueuer"
INGEST = "ingest_document"  # the entrypoint of ingestion jobs


def queue_settings() -> DBSettings:
    """PgQueuer's names, all in our schema (the library's defaults otherwise)."""
    return DBSettings(db_schema=SCHEMA)


def channel() -> Channel:
    return Channel(queue_settings().channel)


def queries_on(connection: Any) -> Queries:
    """PgQueuer's queries over one asyncpg connection (its own, or a session's in a
    transaction)."""
    settings = queue_settings()
    return Queries(
        AsyncpgDriver(connection),
        qbe=QueryBuilderEnvironment(settings),
        qbq=QueryQueueBuilder(settings),
        qbs=QuerySchedulerBuilder(settings),
    )


def install_sql() -> str:
    """The DDL of the queue's schema, tables, indexes and NOTIFY trigger (the migration's)."""
    return QueryBuilderEnvironment(queue_settings()).build_install_query(create_schema=True)


def uninstall_sql() -> str:
    return QueryBuilderEnvironment(queue_settings()).build_uninstall_query() + (
        f"\nDROP SCHEMA IF EXISTS {SCHEMA};"
    )


@dataclass(frozen=True, slots=True)
class IngestJob:
    """What an ingestion job carries: the document's ids and the generation it was added at."""

    tenant_id: uuid.UUID
    collection_id: uuid.UUID
    document_id: uuid.UUID
    generation: int

    @property
    def dedupe_key(self) -> str:
        """One queued or running job per document generation: enqueueing again is a no-op."""
        return f"ingest:{self.document_id}:{self.generation}"

    def encode(self) -> bytes:
        return json.dumps(
            {
                "tenant_id": str(self.tenant_id),
                "collection_id": str(self.collection_id),
                "document_id": str(self.document_id),
                "generation": self.generation,
            }
        ).encode()

    @classmethod
    def decode(cls, payload: bytes | None) -> IngestJob:
        data = json.loads(payload or b"{}")
        return cls(
            tenant_id=uuid.UUID(data["tenant_id"]),
            collection_id=uuid.UUID(data["collection_id"]),
            document_id=uuid.UUID(data["document_id"]),
            generation=int(data["generation"]),
        )


async def enqueue(queries: Queries, jobs: list[IngestJob]) -> None:
    """Enqueue ingestion jobs in one statement; one already queued or running is kept."""
    if not jobs:
        return
    await queries.enqueue(
        [INGEST] * len(jobs),
        [job.encode() for job in jobs],
        [0] * len(jobs),
        dedupe_key=[job.dedupe_key for job in jobs],
        on_conflict="skip",
    )


async def enqueue_in(session: AsyncSession, jobs: list[IngestJob]) -> None:
    """Enqueue on `session`'s connection, inside its transaction: the jobs commit with it."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    await enqueue(queries_on(raw.driver_connection), jobs)
