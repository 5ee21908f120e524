"""Collections and documents: create, read, delete, and search. No HTTP here; callers commit.

Adding a document only records it (status `pending`); its chunks are written by
`ingestion.ingest_document`, run by a worker from the job the caller enqueues in the same
transaction (`ingestion.enqueue_ingestion`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.audit.service import Actor
from promptlogic.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from promptlogic.knowledge.embeddings import OFFLINE_MODEL, Embedders, EmbeddingSpec
from promptlogic.knowledge.models import Collection, Document
from promptlogic.knowledge.pdf import PdfUnreadable, pdf_text
from promptlogic.knowledge.schemas import (
    DEFAULT_DIMENSIONS,
    MAX_K,
    MAX_QUERY_CHARS,
    MAX_TEXT_CHARS,
    ChunkingOut,
    CollectionCreate,
    CollectionOut,
    DocumentIn,
    DocumentOut,
    EmbeddingOut,
    ProgressOut,
)
from promptlogic.knowledge.search import Hit, hybrid_search, parse_filter
from promptlogic.pagination import decode_cursor, paginate


@dataclass(frozen=True, slots=True)
class Counts:
    documents: int = 0
    chunks: int = 0
    ingesting: int = 0
    failed: int = 0


def spec_of(collection: Collection) -> EmbeddingSpec:
    return EmbeddingSpec(
        provider=collection.embedding_provider,
        model=collection.embedding_model,
        dimensions=collection.dimensions,
    )


def collection_out(collection: Collection, counts: Counts) -> CollectionOut:
    return CollectionOut(
        id=collection.id,
        name=collection.name,
        embedding=EmbeddingOut(
            provider=collection.embedding_provider,
            model=collection.embedding_model,
            dimensions=collection.dimensions,
        ),
        chunking=ChunkingOut(
            max_tokens=collection.chunk_max_tokens,
            overlap_tokens=collection.chunk_overlap_tokens,
        ),
        documents=counts.documents,
        chunks=counts.chunks,
        ingesting=counts.ingesting,
        failed=counts.failed,
        created_at=collection.created_at,
    )


def document_out(document: Document) -> DocumentOut:
    return DocumentOut(
        id=document.external_id,
        format=document.format,
        status=document.status,  # type: ignore[arg-type]
        error=document.error,
        progress=ProgressOut(
            chunks_embedded=document.chunks_embedded, chunks_total=document.chunks_total
        ),
        chunk_count=document.chunk_count,
        metadata=document.meta,
        content_hash=document.content_hash,
        characters=len(document.text),
        created_at=document.created_at,
        updated_at=document.updated_at,
        ingested_at=document.ingested_at,
    )


def _collection_summary(collection: Collection) -> dict[str, Any]:
    return {
        "embedding": {
            "provider": collection.embedding_provider,
            "model": collection.embedding_model,
            "dimensions": collection.dimensions,
        },
        "chunking": {
            "max_tokens": collection.chunk_max_tokens,
            "overlap_tokens": collection.chunk_overlap_tokens,
        },
    }


def _spec_from(body: CollectionCreate) -> EmbeddingSpec:
    embedding = body.embedding
    if embedding.provider is None:
        if embedding.model not in (None, OFFLINE_MODEL):
            raise InvalidInput.field(
                "body.embedding.model",
                f"the offline embedder's model is `{OFFLINE_MODEL}`; name a `provider` to "
                "embed with another model",
            )
        return EmbeddingSpec(None, OFFLINE_MODEL, embedding.dimensions or DEFAULT_DIMENSIONS)
    if embedding.model is None:
        raise InvalidInput.field("body.embedding.model", "required with a provider")
    if embedding.dimensions is None:
        raise InvalidInput.field("body.embedding.dimensions", "required with a provider")
    return EmbeddingSpec(embedding.provider, embedding.model, embedding.dimensions)


async def create_collection(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    body: CollectionCreate,
    embedders: Embedders,
    actor: Actor,
) -> Collection:
    """Create a collection; 409 if the name is taken, 422 naming a provider that is missing."""
    spec = _spec_from(body)
    if body.chunking.overlap > body.chunking.max_tokens // 2:
        raise InvalidInput.field("body.chunking.overlap_tokens", "at most half of `max_tokens`")
    if spec.provider is not None:  # the connection must exist now (its model is not called)
        await embedders.for_spec(tenant_id, spec, field="body.embedding.provider")
    inserted = await session.scalar(
        insert(Collection)
        .values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            name=body.name,
            embedding_provider=spec.provider,
            embedding_model=spec.model,
            dimensions=spec.dimensions,
            chunk_max_tokens=body.chunking.max_tokens,
            chunk_overlap_tokens=body.chunking.overlap,
        )
        .on_conflict_do_nothing(constraint="uq_knowledge_collections_tenant_name")
        .returning(Collection.id)
    )
    if inserted is None:
        raise Conflict(f"A collection named `{body.name}` already exists.")
    created = await session.get_one(Collection, inserted)
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="collection.create",
        target_type="collection",
        target_id=created.name,
        after=_collection_summary(created),
    )
    return created


async def get_collection(session: AsyncSession, *, tenant_id: uuid.UUID, name: str) -> Collection:
    collection = await session.scalar(
        Collection.for_tenant(tenant_id).where(Collection.name == name)
    )
    if collection is None:
        raise NotFound(f"No collection named `{name}`.")
    return collection


async def counts_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, collection_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Counts]:
    """Document and chunk counts per collection, in one query (chunk counts are kept on the
    documents, so no chunk is counted)."""
    if not collection_ids:
        return {}
    ingesting = Document.status.in_(("pending", "processing"))
    rows = await session.execute(
        Document.for_tenant(
            tenant_id,
            Document.collection_id,
            func.count(),
            func.coalesce(func.sum(Document.chunk_count), 0),
            func.count(case((ingesting, 1))),
            func.count(case((Document.status == "failed", 1))),
        )
        .where(Document.collection_id.in_(collection_ids))
        .group_by(Document.collection_id)
    )
    found = {row[0]: Counts(*map(int, row[1:])) for row in rows}
    return {cid: found.get(cid, Counts()) for cid in collection_ids}


async def list_collections(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int, cursor: str | None = None
) -> tuple[list[Collection], str | None]:
    statement = Collection.for_tenant(tenant_id).order_by(Collection.name).limit(limit + 1)
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(Collection.name > after)
    found = list((await session.scalars(statement)).all())
    return paginate(found, limit, lambda collection: (collection.name,))


async def delete_collection(
    session: AsyncSession, *, tenant_id: uuid.UUID, name: str, actor: Actor
) -> None:
    """Delete a collection with its documents and chunks."""
    collection = await get_collection(session, tenant_id=tenant_id, name=name)
    before = _collection_summary(collection)
    await session.delete(collection)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="collection.delete",
        target_type="collection",
        target_id=name,
        before=before,
    )


def content_hash(format: str, text: str, metadata: dict[str, Any]) -> str:
    """What decides whether a document changed: its text, format and metadata."""
    canonical = json.dumps([format, text, metadata], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def document_text(body: DocumentIn) -> str:
    """The text to chunk: `text` as given, or the text of the PDF in `content_base64`
    (read in a thread: a large PDF takes a while). 422 naming the field otherwise."""
    if body.format != "pdf":
        if body.content_base64 is not None:
            raise InvalidInput.field("body.content_base64", "only for `pdf`; send `text`")
        if body.text is None:
            raise InvalidInput.field("body.text", f"required for `{body.format}`")
        return body.text
    if body.text is not None:
        raise InvalidInput.field("body.text", "not for `pdf`; send the file in `content_base64`")
    if body.content_base64 is None:
        raise InvalidInput.field("body.content_base64", "required for `pdf`")
    try:
        data = base64.b64decode(body.content_base64, validate=True)
    except binascii.Error:
        raise InvalidInput.field("body.content_base64", "not valid base64") from None
    try:
        text = await asyncio.to_thread(pdf_text, data)
    except PdfUnreadable as exc:
        raise InvalidInput.field("body.content_base64", str(exc)) from None
    if len(text) > MAX_TEXT_CHARS:
        raise PayloadTooLarge(
            f"The PDF's text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}.",
            errors=[{"field": "body.content_base64", "message": "too much text"}],
        )
    return text


@dataclass(frozen=True, slots=True)
class Added:
    document: Document
    collection: Collection
    changed: bool  # False: the same content was already there (and had not failed)


async def add_document(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    collection: str,
    body: DocumentIn,
    actor: Actor,
) -> Added:
    """Add or replace a document: it becomes `pending` at a new generation, and its previous
    chunks stay searchable until the new ones replace them. The same content again, unless
    its last ingestion failed, changes nothing."""
    owner = await get_collection(session, tenant_id=tenant_id, name=collection)
    text = await document_text(body)
    digest = content_hash(body.format, text, body.metadata)
    table = Document.__table__
    statement = insert(table).values(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        collection_id=owner.id,
        external_id=body.id,
        format=body.format,
        text=text,
        metadata=body.metadata,
        content_hash=digest,
        generation=1,
        status="pending",
        chunks_embedded=0,
        chunk_count=0,
    )
    statement = statement.on_conflict_do_update(
        constraint="uq_knowledge_documents_collection_external_id",
        set_={
            "format": statement.excluded["format"],
            "text": statement.excluded["text"],
            "metadata": statement.excluded["metadata"],
            "content_hash": statement.excluded["content_hash"],
            "generation": table.c.generation + 1,
            "status": "pending",
            "error": None,
            "chunks_total": None,
            "chunks_embedded": 0,
            "updated_at": func.now(),
        },
        where=(table.c.content_hash != statement.excluded["content_hash"])
        | (table.c.status == "failed"),
    ).returning(table.c.id)
    changed_id = await session.scalar(statement)
    document = await session.scalar(
        Document.for_tenant(tenant_id)
        .where(Document.collection_id == owner.id, Document.external_id == body.id)
        .execution_options(populate_existing=True)
    )
    assert document is not None
    if changed_id is not None:
        await audit.record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="document.add",
            target_type="document",
            target_id=f"{owner.name}/{body.id}",
            after={
                "format": body.format,
                "content_hash": digest,
                "characters": len(text),
                "generation": document.generation,
            },
        )
    return Added(document, owner, changed=changed_id is not None)


async def get_document(
    session: AsyncSession, *, tenant_id: uuid.UUID, collection: str, document_id: str
) -> Document:
    owner = await get_collection(session, tenant_id=tenant_id, name=collection)
    document = await session.scalar(
        Document.for_tenant(tenant_id).where(
            Document.collection_id == owner.id, Document.external_id == document_id
        )
    )
    if document is None:
        raise NotFound(f"No document `{document_id}` in collection `{collection}`.")
    return document


async def list_documents(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    collection: str,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
) -> tuple[list[Document], str | None]:
    """A page of a collection's documents by id."""
    owner = await get_collection(session, tenant_id=tenant_id, name=collection)
    statement = (
        Document.for_tenant(tenant_id)
        .where(Document.collection_id == owner.id)
        .order_by(Document.external_id)
        .limit(limit + 1)
    )
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(Document.external_id > after)
    if status is not None:
        statement = statement.where(Document.status == status)
    found = list((await session.scalars(statement)).all())
    return paginate(found, limit, lambda document: (document.external_id,))


async def delete_document(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    collection: str,
    document_id: str,
    actor: Actor,
) -> None:
    """Delete a document and its chunks (an ingestion still running for it writes nothing)."""
    document = await get_document(
        session, tenant_id=tenant_id, collection=collection, document_id=document_id
    )
    await session.delete(document)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="document.delete",
        target_type="document",
        target_id=f"{collection}/{document_id}",
        before={"content_hash": document.content_hash, "chunk_count": document.chunk_count},
    )


async def search(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    collection: str,
    query: str,
    k: int,
    filter: dict[str, Any] | None,
    embedders: Embedders,
    field: str = "body",
) -> list[Hit]:
    """The `k` chunks of the tenant's `collection` that best match `query` (vector and
    full-text rankings fused), among those whose metadata passes `filter`.

    Problems are reported under `field` (`body.query`, `body.filter.<key>`…): prompt bindings
    pass where the binding is. 404 for an unknown collection.
    """
    if not 1 <= k <= MAX_K:
        raise InvalidInput.field(f"{field}.k", f"must be between 1 and {MAX_K}")
    if not query.strip():
        raise InvalidInput.field(f"{field}.query", "must not be empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput.field(f"{field}.query", f"at most {MAX_QUERY_CHARS} characters")
    conditions = parse_filter(filter, f"{field}.filter")
    owner = await get_collection(session, tenant_id=tenant_id, name=collection)
    embedder = await embedders.for_spec(tenant_id, spec_of(owner))
    (vector,) = await embedder.embed([query])
    return await hybrid_search(
        session,
        tenant_id=tenant_id,
        collection_id=owner.id,
        dimensions=owner.dimensions,
        query_text=query,
        query_vector=vector,
        k=k,
        conditions=conditions,
    )
