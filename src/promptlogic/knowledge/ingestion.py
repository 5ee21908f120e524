"""Ingestion: chunk a document, embed its chunks, and swap them in atomically.

`ingest_document` is the unit of background work: a plain async function of ids, which the job
queue's worker (promptlogic.jobs, `promptlogic worker`) calls. The request that adds a document
enqueues its job in its own transaction (`enqueue_ingestion`), so a document is never left
`pending` without a job to ingest it.

Each ingestion works on the document's generation as it found it. Progress is written in short
transactions of its own; the chunks are written in one last transaction that first checks the
document is still at that generation (not replaced nor deleted meanwhile) and then deletes the
previous chunks and inserts the new ones, so a search sees either the old chunks or the new,
never neither nor both.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.errors import Problem
from promptlogic.jobs.queue import IngestJob, enqueue_in
from promptlogic.knowledge.chunking import Chunk as Piece
from promptlogic.knowledge.chunking import chunk_document
from promptlogic.knowledge.embeddings import Embedders, EmbeddingSpec
from promptlogic.knowledge.models import Chunk, Collection, Document

log = logging.getLogger(__name__)

EMBED_BATCH = 64  # chunks embedded between two progress updates
INSERT_BATCH = 500
MAX_ERROR_CHARS = 1000

Sessionmaker = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class Work:
    """What an ingestion read in its first transaction."""

    generation: int
    text: str
    format: str
    metadata: dict[str, Any]
    spec: EmbeddingSpec
    max_tokens: int
    overlap_tokens: int


async def ingest_document(
    sessionmaker: Sessionmaker,
    embedders: Embedders,
    tenant_id: uuid.UUID,
    collection_id: uuid.UUID,
    document_id: uuid.UUID,
) -> str:
    """Ingest the document's current generation; returns the status it ended in (`ready`,
    `failed`, or `superseded` when it was replaced or deleted meanwhile). Never raises for a
    failure of the document's own (it is recorded on the document)."""
    work = await _load(sessionmaker, tenant_id, collection_id, document_id)
    if work is None:
        return "superseded"
    try:
        pieces = await asyncio.to_thread(
            chunk_document,
            work.text,
            format=work.format,  # type: ignore[arg-type]
            max_tokens=work.max_tokens,
            overlap_tokens=work.overlap_tokens,
        )
        if not await _progress(sessionmaker, document_id, work.generation, 0, len(pieces)):
            return "superseded"
        embedder = await embedders.for_spec(tenant_id, work.spec)
        vectors: list[list[float]] = []
        for start in range(0, len(pieces), EMBED_BATCH):
            batch = pieces[start : start + EMBED_BATCH]
            vectors.extend(await embedder.embed([piece.embedding_text for piece in batch]))
            if not await _progress(
                sessionmaker, document_id, work.generation, len(vectors), len(pieces)
            ):
                return "superseded"
        return await _swap(
            sessionmaker, tenant_id, collection_id, document_id, work, pieces, vectors
        )
    except Exception as exc:
        await _fail(sessionmaker, document_id, work.generation, exc)
        return "failed"


async def _load(
    sessionmaker: Sessionmaker,
    tenant_id: uuid.UUID,
    collection_id: uuid.UUID,
    document_id: uuid.UUID,
) -> Work | None:
    async with sessionmaker() as session, session.begin():
        row = (
            await session.execute(
                select(Document, Collection)
                .join(Collection, Collection.id == Document.collection_id)
                .where(
                    Document.tenant_id == tenant_id,
                    Document.id == document_id,
                    Collection.id == collection_id,
                )
            )
        ).first()
        if row is None:
            return None
        document, collection = row
        await session.execute(
            update(Document)
            .where(Document.id == document_id, Document.generation == document.generation)
            .values(status="processing", error=None, updated_at=func.now())
        )
        return Work(
            generation=document.generation,
            text=document.text,
            format=document.format,
            metadata=document.meta,
            spec=EmbeddingSpec(
                collection.embedding_provider, collection.embedding_model, collection.dimensions
            ),
            max_tokens=collection.chunk_max_tokens,
            overlap_tokens=collection.chunk_overlap_tokens,
        )


async def _progress(
    sessionmaker: Sessionmaker, document_id: uuid.UUID, generation: int, done: int, total: int
) -> bool:
    """Record progress; False when the document is no longer at `generation`."""
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            update(Document)
            .where(Document.id == document_id, Document.generation == generation)
            .values(chunks_embedded=done, chunks_total=total, updated_at=func.now())
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


async def _swap(
    sessionmaker: Sessionmaker,
    tenant_id: uuid.UUID,
    collection_id: uuid.UUID,
    document_id: uuid.UUID,
    work: Work,
    pieces: Sequence[Piece],
    vectors: Sequence[Sequence[float]],
) -> str:
    """Replace the document's chunks in one transaction, if it is still at its generation."""
    async with sessionmaker() as session, session.begin():
        current = await session.scalar(
            select(Document.id)
            .where(Document.id == document_id, Document.generation == work.generation)
            .with_for_update()
        )
        if current is None:
            return "superseded"
        await session.execute(delete(Chunk).where(Chunk.document_id == document_id))
        rows = [
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "collection_id": collection_id,
                "document_id": document_id,
                "chunk_index": piece.index,
                "heading": piece.heading,
                "text": piece.text,
                "token_count": piece.token_count,
                "meta": work.metadata,
                "dimensions": work.spec.dimensions,
                "embedding": vector,
            }
            for piece, vector in zip(pieces, vectors, strict=True)
        ]
        for start in range(0, len(rows), INSERT_BATCH):
            await session.execute(insert(Chunk), rows[start : start + INSERT_BATCH])
        await session.execute(
            update(Document)
            .where(Document.id == document_id)
            .values(
                status="ready",
                error=None,
                chunk_count=len(rows),
                chunks_embedded=len(rows),
                chunks_total=len(rows),
                ingested_at=func.now(),
                updated_at=func.now(),
            )
        )
    return "ready"


async def _fail(
    sessionmaker: Sessionmaker, document_id: uuid.UUID, generation: int, exc: Exception
) -> None:
    """Record why the ingestion failed; the previous chunks, if any, stay searchable."""
    if isinstance(exc, Problem):
        message = exc.detail
    else:
        log.exception("ingestion of document %s failed", document_id, exc_info=exc)
        message = "An unexpected error occurred during ingestion; it has been logged."
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Document)
            .where(Document.id == document_id, Document.generation == generation)
            .values(status="failed", error=message[:MAX_ERROR_CHARS], updated_at=func.now())
        )


# The queue -------------------------------------------------------------------------------

# The databases this process enqueued to, with what a worker needs there: for tests, which
# run the worker in this process (`wait_for_ingestions`) rather than as `promptlogic worker`.
_enqueued_to: dict[str, tuple[Sessionmaker, Embedders]] = {}


async def enqueue_ingestion(
    session: AsyncSession,
    sessionmaker: Sessionmaker,
    embedders: Embedders,
    document: Document,
) -> None:
    """Enqueue the ingestion of `document`'s current generation in `session`'s transaction: the
    job exists if and only if the document's new text was committed."""
    job = IngestJob(document.tenant_id, document.collection_id, document.id, document.generation)
    await enqueue_in(session, [job])
    url = session.get_bind().url.render_as_string(hide_password=False)
    _enqueued_to[url] = (sessionmaker, embedders)


async def wait_for_ingestions() -> None:
    """Tests: run a worker in this process on each database this process enqueued to, until
    its queue is empty and every job taken has ended."""
    from promptlogic.jobs.worker import WorkerOptions, run_worker  # it imports this module

    for url, (sessionmaker, embedders) in list(_enqueued_to.items()):
        await run_worker(sessionmaker, embedders, url, WorkerOptions(sweep=False), drain=True)
