"""Search bindings: a version's `{"source": "search"}` binding served by a collection."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from promptlogic.errors import InvalidInput, NotFound
from promptlogic.knowledge import service
from promptlogic.knowledge.embeddings import Embedders
from promptlogic.prompts.bindings import Searcher


def searcher(sessions: async_sessionmaker[AsyncSession], embedders: Embedders) -> Searcher:
    """Searches for bindings: the chunks as the templates see them (text, heading, document,
    metadata, score), and what the run reports (chunk ids and scores)."""

    async def search_for(
        tenant_id: uuid.UUID, binding: dict[str, Any], query: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        where = f"context.{binding['name']}"
        try:
            async with sessions() as session:
                hits = await service.search(
                    session,
                    tenant_id=tenant_id,
                    collection=binding["collection"],
                    query=query,
                    k=binding["k"],
                    filter=binding.get("filter"),
                    embedders=embedders,
                    field=where,
                )
        except NotFound as missing:
            raise InvalidInput.field(f"{where}.collection", missing.detail) from None
        chunks = [
            {
                "text": hit.text,
                "heading": hit.heading,
                "document_id": hit.document_id,
                "metadata": hit.metadata,
                "score": hit.score,
            }
            for hit in hits
        ]
        report = [
            {
                "id": str(hit.id),
                "document_id": hit.document_id,
                "chunk_index": hit.chunk_index,
                "score": round(hit.score, 6),
            }
            for hit in hits
        ]
        return chunks, report

    return search_for
