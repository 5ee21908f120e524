"""Ingestion as the unit of background work: progress, atomic replacement, races, failures."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from promptlogic.audit.service import OPERATOR
from promptlogic.db.engine import commit
from promptlogic.errors import InvalidInput
from promptlogic.knowledge import service
from promptlogic.knowledge.embeddings import EmbeddingSpec, OfflineEmbedder
from promptlogic.knowledge.ingestion import ingest_document
from promptlogic.knowledge.schemas import DocumentIn
from tests.knowledge.support import add_ready, ingested, make_collection, search

OLD = "Refunds take ten days. " * 40
NEW = "Exchanges are free for members. " * 40


class Gate:
    """Embedders whose embedding waits until released (and then fails, if told to)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.failure: Exception | None = None
        self.calls = 0

    async def for_spec(
        self, tenant_id: uuid.UUID, spec: EmbeddingSpec, *, field: str | None = None
    ) -> GatedEmbedder:
        return GatedEmbedder(self, spec.dimensions)


@dataclass
class GatedEmbedder:
    gate: Gate
    dimensions: int
    model: str = "gated"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.gate.calls += 1
        self.gate.started.set()
        await self.gate.release.wait()
        if self.gate.failure is not None:
            raise self.gate.failure
        return OfflineEmbedder(self.dimensions).embed_now(texts)


@dataclass
class Ids:
    tenant_id: uuid.UUID
    collection_id: uuid.UUID
    document_id: uuid.UUID


@pytest.fixture
async def policy(client, admin, session, tenant) -> Ids:
    """Collection `kb` (small chunks) with document `policy` ready with the OLD text."""
    await make_collection(client, admin.headers, "kb", chunking={"max_tokens": 60})
    await add_ready(client, admin.headers, "kb", {"policy": OLD})
    row = (await session.execute(text("SELECT collection_id, id FROM knowledge_documents"))).one()
    return Ids(tenant.id, row.collection_id, row.id)


async def re_add(session, tenant, body: str, **fields) -> None:
    """Replace `policy` as the API does, without starting its ingestion."""
    await service.add_document(
        session,
        tenant_id=tenant.id,
        collection="kb",
        body=DocumentIn(id="policy", text=body, **fields),
        actor=OPERATOR,
    )
    await commit(session)


async def texts_found(client, admin) -> set[str]:
    """Which versions of `policy` a search finds: OLD's and NEW's first sentences."""
    hits = await search(client, admin.headers, "kb", query="refunds exchanges members", k=50)
    markers = {"Refunds": "Refunds take ten days", "Exchanges": "Exchanges are free for members"}
    return {sentence for hit in hits for word, sentence in markers.items() if word in hit["text"]}


async def test_a_search_during_re_ingestion_sees_the_old_chunks_then_the_new(
    app, client, admin, session, tenant, policy
):
    old_count = (await ingested(client, admin.headers, "kb", "policy"))["chunk_count"]
    assert old_count > 1
    await re_add(session, tenant, NEW)
    gate = Gate()
    job = asyncio.create_task(
        ingest_document(app.state.sessionmaker, gate, *vars(policy).values())  # type: ignore[arg-type]
    )
    await gate.started.wait()

    during = await ingested_now(client, admin)
    assert during["status"] == "processing"
    assert during["progress"]["chunks_total"] > 1
    assert during["chunk_count"] == old_count  # the old chunks are still the searchable ones
    assert await texts_found(client, admin) == {"Refunds take ten days"}

    seen: list[set[str]] = []

    async def keep_searching() -> None:
        while not job.done():
            seen.append(await texts_found(client, admin))

    watcher = asyncio.create_task(keep_searching())
    gate.release.set()
    assert await job == "ready"
    await watcher

    assert await texts_found(client, admin) == {"Exchanges are free for members"}
    assert all(
        found in ({"Refunds take ten days"}, {"Exchanges are free for members"}) for found in seen
    ), "a search saw no chunks, or both versions"
    after = await ingested_now(client, admin)
    assert after["status"] == "ready"
    assert after["progress"]["chunks_embedded"] == after["chunk_count"]


async def ingested_now(client, admin) -> dict:
    response = await client.get("/v1/collections/kb/documents/policy", headers=admin.headers)
    assert response.status_code == 200
    return response.json()


async def test_an_ingestion_overtaken_by_a_newer_version_writes_nothing(
    app, client, admin, session, tenant, policy
):
    await re_add(session, tenant, NEW)
    gate = Gate()
    stale = asyncio.create_task(
        ingest_document(app.state.sessionmaker, gate, *vars(policy).values())  # type: ignore[arg-type]
    )
    await gate.started.wait()
    await re_add(session, tenant, "Warranty lasts two years.")
    gate.release.set()

    assert await stale == "superseded"
    assert (await ingested_now(client, admin))["status"] == "pending"  # the newest waits
    assert await texts_found(client, admin) == {"Refunds take ten days"}
    fresh = await ingest_document(
        app.state.sessionmaker,
        _offline(),
        *vars(policy).values(),  # type: ignore[arg-type]
    )
    assert fresh == "ready"
    hits = await search(client, admin.headers, "kb", query="warranty", k=5)
    assert [hit["text"] for hit in hits] == ["Warranty lasts two years."]


async def test_a_document_deleted_during_ingestion_gets_no_chunks(
    app, client, admin, session, tenant, policy
):
    await re_add(session, tenant, NEW)
    gate = Gate()
    job = asyncio.create_task(
        ingest_document(app.state.sessionmaker, gate, *vars(policy).values())  # type: ignore[arg-type]
    )
    await gate.started.wait()
    deleted = await client.delete("/v1/collections/kb/documents/policy", headers=admin.headers)
    assert deleted.status_code == 204
    gate.release.set()

    assert await job == "superseded"
    assert await session.scalar(text("SELECT count(*) FROM knowledge_chunks")) == 0


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (InvalidInput.field("x", "the provider refused the input"), "the provider refused"),
        (RuntimeError("secret internals at 0xdeadbeef"), "unexpected error"),
    ],
)
async def test_a_failed_ingestion_records_why_and_keeps_the_previous_chunks(
    app, client, admin, session, tenant, policy, failure, message
):
    await re_add(session, tenant, NEW)
    gate = Gate()
    gate.failure = failure
    gate.release.set()

    status = await ingest_document(
        app.state.sessionmaker,
        gate,
        *vars(policy).values(),  # type: ignore[arg-type]
    )

    assert status == "failed"
    document = await ingested_now(client, admin)
    assert document["status"] == "failed"
    assert message in document["error"]
    assert "0xdeadbeef" not in document["error"]
    assert await texts_found(client, admin) == {"Refunds take ten days"}
    listed = (await client.get("/v1/collections/kb", headers=admin.headers)).json()
    assert listed["failed"] == 1
    # the same content again is retried, not ignored
    retried = await client.post(
        "/v1/collections/kb/documents", headers=admin.headers, json={"id": "policy", "text": NEW}
    )
    assert retried.status_code == 202
    assert (await ingested(client, admin.headers, "kb", "policy"))["status"] == "ready"
    assert await texts_found(client, admin) == {"Exchanges are free for members"}


async def test_a_missing_document_is_nothing_to_do(app, policy):
    status = await ingest_document(
        app.state.sessionmaker, _offline(), policy.tenant_id, policy.collection_id, uuid.uuid4()
    )

    assert status == "superseded"


def _offline() -> Gate:
    gate = Gate()
    gate.release.set()
    return gate
