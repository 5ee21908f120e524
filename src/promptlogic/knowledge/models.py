"""Tables of knowledge collections: collections, their documents and the documents' chunks.

Chunks of every collection share one table with an untyped `vector` column and a `dimensions`
column. pgvector's HNSW index needs one fixed dimension, so there is one partial index per
supported dimension, on the expression `embedding::vector(N)` for the rows `dimensions = N`;
a search names the same expression and predicate, so the planner can use it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import VECTOR
from sqlalchemy import (
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    cast,
    column,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from promptlogic.db.base import Base, CreatedAt, TenantScoped, UUIDPrimaryKey

SUPPORTED_DIMENSIONS = (256, 384, 512, 768, 1024, 1536)
"""Sizes with an HNSW index. Another size is one migration: a partial index like these."""

STATUSES = ("pending", "processing", "ready", "failed")
TEXT_SEARCH_CONFIG = "english"
"""Full-text configuration of every chunk: English stemming and stop words. Text in another
language is still matched word for word (its words are rarely changed by English stemming),
only without its own stemming and stop words."""


def hnsw_index_name(dimensions: int) -> str:
    return f"ix_knowledge_chunks_hnsw_{dimensions}"


def vector_expression(dimensions: int) -> str:
    """The indexed expression, as a search must write it for the planner to use the index."""
    return f"(embedding::vector({int(dimensions)}))"


class Collection(UUIDPrimaryKey, CreatedAt, TenantScoped, Base):
    """A tenant's set of documents, searched together; its embedding is fixed at creation."""

    __tablename__ = "knowledge_collections"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_knowledge_collections_tenant_name"),
        CheckConstraint(
            f"dimensions IN ({', '.join(map(str, SUPPORTED_DIMENSIONS))})", name="dimensions"
        ),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    embedding_provider: Mapped[str | None] = mapped_column(String(100))
    embedding_model: Mapped[str] = mapped_column(String(200), nullable=False)
    dimensions: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    chunk_max_tokens: Mapped[int] = mapped_column(Integer, nullable=False)
    chunk_overlap_tokens: Mapped[int] = mapped_column(Integer, nullable=False)


class Document(UUIDPrimaryKey, CreatedAt, TenantScoped, Base):
    """A document as last added, with the state of its ingestion.

    `generation` counts the times it was added: an ingestion writes its chunks only if the
    document is still at the generation it started from.
    """

    __tablename__ = "knowledge_documents"
    __table_args__ = (
        UniqueConstraint(
            "collection_id", "external_id", name="uq_knowledge_documents_collection_external_id"
        ),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
    )

    collection_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("knowledge_collections.id", ondelete="CASCADE"),
        nullable=False,
    )
    external_id: Mapped[str] = mapped_column(String(200), nullable=False)
    format: Mapped[str] = mapped_column(String(10), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    chunks_total: Mapped[int | None] = mapped_column(Integer)
    chunks_embedded: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    ingested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# HNSW build parameters (pgvector's defaults are m 16, ef_construction 64). On the offline
# embedder's hashed vectors at 100,000 chunks, built as chunks arrive, recall@10 at ef_search
# 400: the defaults 0.82, m 32 with ef_construction 200 0.94, these 0.955 while following half
# as many links at each step of a search, for about the same insert cost: a wide search while
# building makes a better graph than more links per node (bench/knowledge_search.py).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 400


def _hnsw_index(dimensions: int) -> Index:
    expression = cast(column("embedding"), VECTOR(dimensions)).label(f"embedding_{dimensions}")
    return Index(
        hnsw_index_name(dimensions),
        expression,
        postgresql_using="hnsw",
        postgresql_ops={f"embedding_{dimensions}": "vector_cosine_ops"},
        postgresql_where=text(f"dimensions = {dimensions}"),
        postgresql_with={"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
    )


class Chunk(UUIDPrimaryKey, TenantScoped, Base):
    """A piece of a document with its embedding, its full-text vector and the document's
    metadata (copied, so filters apply inside the index scans)."""

    __tablename__ = "knowledge_chunks"
    __table_args__ = (
        Index("ix_knowledge_chunks_collection_id", "collection_id"),
        Index("ix_knowledge_chunks_document_id", "document_id", "chunk_index"),
        Index("ix_knowledge_chunks_tsv", "tsv", postgresql_using="gin"),
        Index(
            "ix_knowledge_chunks_metadata",
            "metadata",
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        ),
        *(_hnsw_index(dimensions) for dimensions in SUPPORTED_DIMENSIONS),
    )

    collection_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("knowledge_collections.id", ondelete="CASCADE"),
        nullable=False,
    )
    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("knowledge_documents.id", ondelete="CASCADE"),
        nullable=False,
    )
    chunk_index: Mapped[int] = mapped_column(Integer, nullable=False)
    heading: Mapped[str] = mapped_column(Text, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    token_count: Mapped[int] = mapped_column(Integer, nullable=False)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, nullable=False)
    dimensions: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    embedding: Mapped[Any] = mapped_column(VECTOR(), nullable=False)
    tsv: Mapped[Any] = mapped_column(
        TSVECTOR,
        Computed(
            f"setweight(to_tsvector('{TEXT_SEARCH_CONFIG}'::regconfig, heading), 'A') || "
            f"setweight(to_tsvector('{TEXT_SEARCH_CONFIG}'::regconfig, text), 'B')",
            persisted=True,
        ),
    )
