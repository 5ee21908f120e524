"""Request and response bodies of collections, documents and search."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from promptlogic.knowledge.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS
from promptlogic.knowledge.models import SUPPORTED_DIMENSIONS
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.providers.schemas import MODEL_PATTERN

CollectionName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
DOCUMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$"
DocumentId = Annotated[str, StringConstraints(pattern=DOCUMENT_ID_PATTERN)]
DEFAULT_DIMENSIONS = 384
MAX_TEXT_CHARS = 1_000_000
MAX_METADATA_BYTES = 16 * 1024
MAX_PDF_BASE64_CHARS = 32 * 1024 * 1024  # the request body limit is usually the lower bound
MAX_QUERY_CHARS = 2_000
MAX_K = 50
Status = Literal["pending", "processing", "ready", "failed"]  # as models.STATUSES


def _dimensions(value: int) -> int:
    if value not in SUPPORTED_DIMENSIONS:
        raise ValueError(f"must be one of {', '.join(map(str, SUPPORTED_DIMENSIONS))}")
    return value


def _small_metadata(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    return value


Dimensions = Annotated[int, AfterValidator(_dimensions)]
Metadata = Annotated[dict[str, Any], AfterValidator(_small_metadata)]


class EmbeddingIn(BaseModel):
    """`provider` null: the offline embedder. Otherwise a provider connection's name and the
    model it embeds with, asked for `dimensions` (the OpenAI `dimensions` parameter)."""

    model_config = ConfigDict(extra="forbid")

    provider: Annotated[str, StringConstraints(pattern=NAME_PATTERN)] | None = None
    model: Annotated[str, StringConstraints(pattern=MODEL_PATTERN)] | None = None
    dimensions: Dimensions | None = Field(
        default=None,
        description=f"One of {', '.join(map(str, SUPPORTED_DIMENSIONS))}; "
        f"{DEFAULT_DIMENSIONS} by default for the offline embedder.",
    )


class ChunkingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tokens: Annotated[int, Field(ge=50, le=4000)] = DEFAULT_MAX_TOKENS
    overlap_tokens: Annotated[int, Field(ge=0, le=2000)] | None = Field(
        default=None,
        description=f"At most half of `max_tokens`; by default an eighth of it "
        f"({DEFAULT_OVERLAP_TOKENS} for {DEFAULT_MAX_TOKENS}).",
    )

    @property
    def overlap(self) -> int:
        return self.max_tokens // 8 if self.overlap_tokens is None else self.overlap_tokens


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CollectionName
    embedding: EmbeddingIn = Field(
        default_factory=EmbeddingIn, description="Fixed at creation. Default: offline, 384."
    )
    chunking: ChunkingIn = Field(default_factory=ChunkingIn, description="Fixed at creation.")


class EmbeddingOut(BaseModel):
    provider: str | None = Field(description="The connection's name; null for offline.")
    model: str
    dimensions: int


class ChunkingOut(BaseModel):
    max_tokens: int
    overlap_tokens: int


class CollectionOut(BaseModel):
    id: uuid.UUID
    name: str
    embedding: EmbeddingOut
    chunking: ChunkingOut
    documents: int = Field(description="Documents in the collection, in any status.")
    chunks: int = Field(description="Searchable chunks.")
    ingesting: int = Field(description="Documents pending or processing.")
    failed: int = Field(description="Documents whose last ingestion failed.")
    created_at: datetime


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: DocumentId = Field(description="Your id for the document; adding it again replaces it.")
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)] | None = Field(
        default=None, description="The document, for `text` and `markdown`."
    )
    content_base64: Annotated[str, StringConstraints(max_length=MAX_PDF_BASE64_CHARS)] | None = (
        Field(default=None, description="The file, base64-encoded, for `pdf`.")
    )
    metadata: Metadata = Field(
        default_factory=dict,
        description=f"Copied to every chunk for filters; at most {MAX_METADATA_BYTES} bytes.",
    )
    format: Literal["text", "markdown", "pdf"] = Field(
        default="text",
        description="`markdown` chunks at headings and keeps the heading path; `pdf` reads the "
        "text of each page of `content_base64`.",
    )


class ProgressOut(BaseModel):
    chunks_embedded: int
    chunks_total: int | None = Field(description="Known once the document is chunked.")


class DocumentOut(BaseModel):
    id: str
    format: str
    status: Status
    error: str | None = Field(description="Why the last ingestion failed.")
    progress: ProgressOut
    chunk_count: int = Field(
        description="Searchable chunks (the previous text's while a new one is ingested)."
    )
    metadata: dict[str, Any]
    content_hash: str
    characters: int
    created_at: datetime
    updated_at: datetime
    ingested_at: datetime | None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY_CHARS)]
    k: Annotated[int, Field(ge=1, le=MAX_K)] = 5
    filter: Annotated[dict[str, Any], Field(max_length=16)] | None = Field(
        default=None,
        description='Metadata conditions, all of which must hold: `{"key": value}` (equal), '
        '`{"key": {"$in": [v1, v2]}}` (equal to one), `{"key": {"$contains": v}}` (an '
        "array holding v).",
    )


class HitOut(BaseModel):
    id: uuid.UUID = Field(description="The chunk's id.")
    document_id: str
    chunk_index: int
    heading: str = Field(description='The heading path, e.g. "Refunds > Exceptions".')
    text: str
    score: float = Field(description="Reciprocal rank fusion of both rankings (k = 60).")
    vector_rank: int | None = Field(description="1-based rank by similarity, if among them.")
    text_rank: int | None = Field(description="1-based full-text rank, if the text matched.")
    similarity: float | None = Field(description="Cosine similarity to the query.")
    metadata: dict[str, Any] = Field(description="The document's metadata.")


class SearchOut(BaseModel):
    hits: list[HitOut]
