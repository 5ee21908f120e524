"""Hybrid search: ranking with a known answer, fusion, filters inside the query, validation."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import text

from promptlogic.audit.service import OPERATOR
from promptlogic.db.engine import commit
from promptlogic.knowledge import search as search_module
from promptlogic.knowledge import service
from promptlogic.knowledge.embeddings import EmbeddingSpec
from promptlogic.knowledge.ingestion import ingest_document
from promptlogic.knowledge.models import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    SUPPORTED_DIMENSIONS,
    hnsw_index_name,
)
from promptlogic.knowledge.schemas import DocumentIn
from promptlogic.knowledge.search import EF_SEARCH
from tests.helpers import assert_names_field, assert_problem
from tests.knowledge.support import add_ready, make_collection, search

HANDBOOK = {
    "refunds": """# Refunds

Refunds are paid back to the original card within ten working days.

## Exceptions

Sale items and gift cards are final and cannot be refunded.
""",
    "shipping": """# Shipping

Parcels leave the warehouse within two working days. Express delivery costs extra.

## International

We ship to the EU, the UK and Switzerland; customs duties are paid by the customer.
""",
    "accounts": """# Accounts

Reset a forgotten password from the sign-in page. Two-factor codes expire after a minute.
""",
    "warranty": """# Warranty

Electronics carry a two-year warranty covering manufacturing defects, not accidental damage.
""",
}


@pytest.fixture
async def handbook(client, admin) -> str:
    await make_collection(client, admin.headers, "kb")
    await add_ready(client, admin.headers, "kb", HANDBOOK, format="markdown")
    return "kb"


@pytest.mark.parametrize(
    ("query", "document_id", "heading"),
    [
        ("how long until my refund is paid back", "refunds", "Refunds"),
        ("can gift cards be refunded", "refunds", "Refunds > Exceptions"),
        ("customs duties for international shipping", "shipping", "Shipping > International"),
        ("forgot my password", "accounts", "Accounts"),
        ("warranty for accidental damage", "warranty", "Warranty"),
    ],
)
async def test_the_chunk_that_answers_comes_first(
    client, admin, handbook, query, document_id, heading
):
    hits = await search(client, admin.headers, handbook, query=query, k=3)

    assert (hits[0]["document_id"], hits[0]["heading"]) == (document_id, heading)
    assert hits[0]["vector_rank"] == 1
    assert hits[0]["text_rank"] == 1
    assert hits[0]["score"] == pytest.approx(2 / 61)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


async def test_a_misspelt_query_is_found_by_the_vectors_alone(client, admin, handbook):
    hits = await search(client, admin.headers, handbook, query="pasword resett", k=3)

    assert hits[0]["document_id"] == "accounts"
    assert hits[0]["text_rank"] is None  # no word matches as written
    assert hits[0]["vector_rank"] == 1  # the character trigrams still overlap
    assert hits[0]["similarity"] > 0


async def test_web_search_syntax_is_honoured(client, admin, handbook):
    phrase = await search(client, admin.headers, handbook, query='"gift cards"', k=5)
    excluded = await search(client, admin.headers, handbook, query="refunds -sale", k=5)

    assert [h["heading"] for h in phrase if h["text_rank"]] == ["Refunds > Exceptions"]
    assert [h["heading"] for h in excluded if h["text_rank"]] == ["Refunds"]


async def test_chunks_with_every_word_rank_before_chunks_with_some(client, admin):
    await make_collection(client, admin.headers, "tiers")
    documents = {
        "both": "The invoice was sent by courier.",
        "repeats-one": "Invoice invoice invoice: the invoice, the invoice again.",
        "other-word": "A courier came.",
    }
    await add_ready(client, admin.headers, "tiers", documents)

    hits = await search(client, admin.headers, "tiers", query="invoice courier", k=5)
    by_text = sorted((h for h in hits if h["text_rank"]), key=lambda h: h["text_rank"])

    assert by_text[0]["document_id"] == "both"
    assert {h["document_id"] for h in by_text[1:]} == {"repeats-one", "other-word"}


async def test_without_a_chunk_holding_every_word_any_word_counts(client, admin):
    await make_collection(client, admin.headers, "tiers")
    documents = {"invoice": "The invoice is attached.", "courier": "A courier came."}
    await add_ready(client, admin.headers, "tiers", documents)

    hits = await search(client, admin.headers, "tiers", query="invoice courier zebra", k=5)

    assert {h["document_id"] for h in hits if h["text_rank"]} == {"invoice", "courier"}


async def test_the_any_word_fallback_ranks_a_bounded_number_of_chunks(client, admin, monkeypatch):
    """With a common word, the fallback ranks at most ANY_WORD_SCAN chunks (it read every chunk
    holding the word, tens of thousands on a large collection)."""
    await make_collection(client, admin.headers, "tiers")
    documents = {f"invoice-{n}": f"Invoice number {n} is attached." for n in range(6)}
    await add_ready(client, admin.headers, "tiers", documents)
    monkeypatch.setattr(search_module, "ANY_WORD_SCAN", 3)

    hits = await search(client, admin.headers, "tiers", query="invoice courier", k=10)

    assert len([h for h in hits if h["text_rank"]]) == 3
    monkeypatch.undo()
    hits = await search(client, admin.headers, "tiers", query="invoice courier", k=10)
    assert len([h for h in hits if h["text_rank"]]) == 6


async def test_k_bounds_the_hits_and_each_hit_says_where_it_comes_from(client, admin, handbook):
    hits = await search(client, admin.headers, handbook, query="working days", k=2)

    assert len(hits) == 2
    assert set(hits[0]) == {
        "id",
        "document_id",
        "chunk_index",
        "heading",
        "text",
        "score",
        "vector_rank",
        "text_rank",
        "similarity",
        "metadata",
    }
    everything = await search(client, admin.headers, handbook, query="working days", k=50)
    assert len(everything) == 6  # every chunk: the small corpus is all in the vector list


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.query"),
        ({"query": ""}, "body.query"),
        ({"query": "   "}, "body.query"),
        ({"query": "x" * 2001}, "body.query"),
        ({"query": "x", "k": 0}, "body.k"),
        ({"query": "x", "k": 51}, "body.k"),
        ({"query": "x", "filter": []}, "body.filter"),
        ({"query": "x", "filter": {"lang": {"$gt": 1}}}, "body.filter.lang"),
        ({"query": "x", "filter": {"lang": {"$in": []}}}, "body.filter.lang.$in"),
        ({"query": "x", "filter": {"lang": {"$in": "en"}}}, "body.filter.lang.$in"),
        ({"query": "x", "filter": {"lang": {"$in": ["en", {"a": 1}]}}}, "body.filter.lang.$in"),
        ({"query": "x", "filter": {"lang": ["en"]}}, "body.filter.lang"),
        ({"query": "x", "filter": {"$or": 1}}, "body.filter.$or"),
        ({"query": "x", "filter": {"lang": "x" * 501}}, "body.filter.lang"),
        ({"query": "x", "filter": {f"k{i}": 1 for i in range(17)}}, "body.filter"),
        ({"query": "x", "limit": 3}, "body.limit"),
    ],
)
async def test_bad_searches_are_refused_naming_the_field(client, admin, handbook, body, field):
    response = await client.post(
        f"/v1/collections/{handbook}/search", headers=admin.headers, json=body
    )

    assert_names_field(assert_problem(response, 422), field)


async def test_a_query_without_words_searches_the_text_only(client, admin, handbook):
    assert await search(client, admin.headers, handbook, query="?!") == []


async def test_an_empty_collection_finds_nothing(client, admin):
    await make_collection(client, admin.headers, "empty")

    assert await search(client, admin.headers, "empty", query="refunds") == []


# Filters ---------------------------------------------------------------------------------


@pytest.fixture
async def multilingual(client, admin) -> str:
    await make_collection(client, admin.headers, "ml")
    documents = {
        "de-1": ("Refund policy: refunds within thirty days, refund to card.", {"lang": "de"}),
        "en-1": ("Refund policy: refunds are paid within ten days.", {"lang": "en"}),
        "en-2": ("Refunds for damaged parcels are fast.", {"lang": "en", "tags": ["damage"]}),
        "en-3": ("Refunds of gift cards are not possible.", {"lang": "en", "tags": ["gift"]}),
        "fr-1": ("Refunds policy in French.", {"lang": "fr", "tags": ["damage"]}),
        **{f"en-x{i}": (f"Shipping note {i}.", {"lang": "en", "n": i}) for i in range(4)},
    }
    for document_id, (body, metadata) in documents.items():
        await add_ready(client, admin.headers, "ml", {document_id: body}, metadata=metadata)
    return "ml"


async def test_a_filter_that_excludes_the_best_match_returns_the_next(client, admin, multilingual):
    query = "refund policy refund card"
    best = await search(client, admin.headers, multilingual, query=query, k=1)
    assert best[0]["document_id"] == "de-1"

    hits = await search(
        client, admin.headers, multilingual, query=query, k=5, filter={"lang": "en"}
    )

    assert hits[0]["document_id"] == "en-1"
    assert len(hits) == 5  # still k results: the filter is inside both rankings
    assert all(hit["metadata"]["lang"] == "en" for hit in hits)
    assert [h["vector_rank"] for h in hits if h["vector_rank"]] == list(
        range(1, 1 + sum(1 for h in hits if h["vector_rank"]))
    ), "ranks are counted among the filtered chunks only"


async def test_in_and_contains_filters(client, admin, multilingual):
    query = "refunds"
    either = await search(
        client,
        admin.headers,
        multilingual,
        query=query,
        k=50,
        filter={"lang": {"$in": ["de", "fr"]}},
    )
    tagged = await search(
        client,
        admin.headers,
        multilingual,
        query=query,
        k=50,
        filter={"tags": {"$contains": "damage"}, "lang": "en"},
    )
    numbered = await search(
        client, admin.headers, multilingual, query="shipping", k=50, filter={"n": 2}
    )

    assert sorted(h["document_id"] for h in either) == ["de-1", "fr-1"]
    assert [h["document_id"] for h in tagged] == ["en-2"]
    assert [h["document_id"] for h in numbered] == ["en-x2"]
    nothing = await search(client, admin.headers, multilingual, query=query, filter={"lang": "it"})
    assert nothing == []


# Fusion with controlled vectors ----------------------------------------------------------


class AxisEmbedders:
    """Vectors chosen by the test: the query and the "unrelated" chunk point the same way,
    the "zebra" chunk the opposite way, every other chunk slightly off the query's way."""

    model = "axes"
    dimensions = 256

    async def for_spec(self, tenant_id: uuid.UUID, spec: EmbeddingSpec, *, field=None):
        return self

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.vector(body) for body in texts]

    @staticmethod
    def vector(body: str) -> list[float]:
        vector = [0.0] * 256
        if "query" in body or "unrelated" in body:
            vector[0] = 1.0
        elif "zebra" in body:
            vector[0] = -1.0
        else:
            vector[0], vector[1] = 1.0, 0.3
            vector[2] = 0.001 * (sum(map(ord, body)) % 13)  # distinct, deterministic
        return vector


async def test_fusion_surfaces_a_text_only_match_and_a_vector_only_match(
    app, client, admin, session, tenant
):
    """More filler chunks than a ranking keeps (40) lie close to the query; one chunk only the
    full text finds (its vector points away), one only the vectors find (no shared word)."""
    await make_collection(client, admin.headers, "fused", embedding={"dimensions": 256})
    embedders = AxisEmbedders()
    documents = {f"filler-{i:02d}": f"near filler number {i}" for i in range(45)}
    documents["lexical"] = "zebra crossing rules"  # the query's words, a far vector
    documents["semantic"] = "unrelated wording entirely"  # no shared word, the query's vector
    for document_id, body in documents.items():
        added = await service.add_document(
            session,
            tenant_id=tenant.id,
            collection="fused",
            body=DocumentIn(id=document_id, text=body),
            actor=OPERATOR,
        )
        await commit(session)
        status = await ingest_document(
            app.state.sessionmaker, embedders, tenant.id, added.collection.id, added.document.id
        )
        assert status == "ready"

    hits = await service.search(
        session,
        tenant_id=tenant.id,
        collection="fused",
        query="query zebra crossing",
        k=5,
        filter=None,
        embedders=embedders,  # type: ignore[arg-type]
    )

    assert [hit.document_id for hit in hits[:2]] == ["semantic", "lexical"]
    semantic, lexical = hits[:2]
    assert (semantic.vector_rank, semantic.text_rank) == (1, None)  # no shared word
    assert (lexical.vector_rank, lexical.text_rank) == (None, 1)  # beyond the 40 nearest
    assert semantic.score == lexical.score == pytest.approx(1 / 61)
    assert all(hit.document_id.startswith("filler") for hit in hits[2:])


# The index --------------------------------------------------------------------------------


@pytest.fixture
async def big(client, admin, session, tenant) -> uuid.UUID:
    """A collection of 1,500 chunks with random 256-dimension vectors, analyzed."""
    created = await make_collection(client, admin.headers, "big", embedding={"dimensions": 256})
    await add_ready(client, admin.headers, "big", {"seed": "seed"})
    collection_id = uuid.UUID(created["id"])
    document_id = await session.scalar(text("SELECT id FROM knowledge_documents"))
    await session.execute(
        text(
            """
            INSERT INTO knowledge_chunks (id, tenant_id, collection_id, document_id,
                chunk_index, heading, text, token_count, metadata, dimensions, embedding)
            SELECT gen_random_uuid(), :tenant, :collection, :document, g, '', 'chunk ' || g, 2,
                jsonb_build_object('bucket', g % 100), 256,
                (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, 256)
                 WHERE g > 0)
            FROM generate_series(1, 1500) AS g
            """
        ),
        {"tenant": tenant.id, "collection": collection_id, "document": document_id},
    )
    await commit(session)
    await session.execute(text("ANALYZE knowledge_chunks"))
    await commit(session)
    return collection_id


async def explain(session, tenant, collection_id, conditions=()) -> str:
    from promptlogic.knowledge.search import filter_clauses, search_sql

    filters, params = filter_clauses(conditions)
    statement = search_sql(256, filters, with_vector=True)
    rows = await session.execute(
        text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + statement),
        {
            "tenant_id": tenant.id,
            "collection_id": collection_id,
            "query_text": "chunk",
            "query_vector": "[" + ",".join(["0.1"] * 256) + "]",
            "candidates": 40,
            "k": 5,
            **params,
        },
    )
    return "\n".join(row[0] for row in rows)


async def test_the_vector_ranking_uses_the_hnsw_index_of_the_dimension(session, tenant, big):
    plan = await explain(session, tenant, big)

    assert "Index Scan using ix_knowledge_chunks_hnsw_256 on knowledge_chunks" in plan
    exact = plan[plan.index("CTE exact") :]
    assert "never executed" in exact, "the exact fallback ran although the index answered"


async def test_every_hnsw_index_is_built_with_the_models_parameters(session):
    """The migrations, not the models, build the indexes: they must agree."""
    rows = await session.execute(
        text(
            "SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_am a ON a.oid = c.relam"
            " WHERE a.amname = 'hnsw' ORDER BY c.relname"
        )
    )
    expected = [f"m={HNSW_M}", f"ef_construction={HNSW_EF_CONSTRUCTION}"]
    found = {name: sorted(options or []) for name, options in rows}
    assert found == {hnsw_index_name(size): sorted(expected) for size in SUPPORTED_DIMENSIONS}


async def test_a_filter_that_starves_the_index_still_gets_k_exact_results(
    client, admin, session, tenant, big
):
    """With the index forced, a filter matching 1% of the rows leaves the index's 40
    candidates nearly empty: the exact fallback must answer, with the true nearest."""
    await session.execute(text("SET enable_sort = off"))
    try:
        plan = await explain(session, tenant, big, [[{"bucket": 7}]])
        assert "ix_knowledge_chunks_hnsw_256" in plan.split("CTE exact")[0]
        hits = await service.search(
            session,
            tenant_id=tenant.id,
            collection="big",
            query="zzz",
            k=10,
            filter={"bucket": 7},
            embedders=Fixed(),  # type: ignore[arg-type]
        )
    finally:
        await session.execute(text("RESET enable_sort"))
        await session.commit()
    expected = await session.scalars(
        text(
            """
            SELECT id FROM knowledge_chunks
            WHERE collection_id = :collection AND metadata @> '{"bucket": 7}'
            ORDER BY (embedding::vector(256) <=> CAST(:q AS vector(256))) + 0 LIMIT 10
            """
        ),
        {"collection": big, "q": "[" + ",".join(["0.1"] * 256) + "]"},
    )
    assert len(hits) == 10
    assert [hit.id for hit in hits] == list(expected)
    assert all(hit.metadata == {"bucket": 7} for hit in hits)


class Fixed:
    """The query vector of the EXPLAIN above, whatever the text."""

    model = "fixed"
    dimensions = 256

    async def for_spec(self, tenant_id, spec, *, field=None):
        return self

    async def embed(self, texts):
        return [[0.1] * 256 for _ in texts]


async def test_more_than_40_hits_come_from_a_wide_index_scan_in_this_transaction_only(
    session, tenant, big
):
    hits = await service.search(
        session,
        tenant_id=tenant.id,
        collection="big",
        query="zzz",
        k=50,
        filter=None,
        embedders=Fixed(),  # type: ignore[arg-type]
    )

    assert len(hits) == 50
    assert await session.scalar(text("SHOW hnsw.ef_search")) == str(EF_SEARCH)
    assert await session.scalar(text("SHOW max_parallel_workers_per_gather")) == "0"
    assert await session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
    await session.rollback()
    assert await session.scalar(text("SHOW hnsw.ef_search")) == "40"
    assert await session.scalar(text("SHOW max_parallel_workers_per_gather")) != "0"
