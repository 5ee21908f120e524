"""Collections embedded by a provider: the OpenAI embeddings API over real HTTP (the fake)."""

from __future__ import annotations

import pytest

from tests.fakes import FakeOpenAI
from tests.fakes.openai_server import Fail
from tests.helpers import assert_names_field, assert_problem
from tests.knowledge.support import add_document, ingested, make_collection, search

API_KEY = "sk-gateway-secret-0123456789abcdef"
LONG = " ".join(f"Sentence {i} of the long manual." for i in range(600))


@pytest.fixture
async def gateway(client, admin, fake_openai: FakeOpenAI) -> FakeOpenAI:
    """Collection `kb` embedded by `text-embedding-3-small` at 256 dimensions through the
    tenant's connection `gateway` to the fake server."""
    response = await client.post(
        "/v1/providers",
        headers=admin.headers,
        json={
            "name": "gateway",
            "kind": "openai_compatible",
            "base_url": fake_openai.base_url,
            "api_key": API_KEY,
            "timeout_seconds": 5,
        },
    )
    assert response.status_code == 201, response.text
    created = await make_collection(
        client,
        admin.headers,
        "kb",
        embedding={"provider": "gateway", "model": "text-embedding-3-small", "dimensions": 256},
        chunking={"max_tokens": 50},
    )
    assert created["embedding"] == {
        "provider": "gateway",
        "model": "text-embedding-3-small",
        "dimensions": 256,
    }
    return fake_openai


async def test_documents_are_embedded_in_batches_through_the_connection(client, admin, gateway):
    await add_document(client, admin.headers, "kb", "manual", LONG)

    document = await ingested(client, admin.headers, "kb", "manual")

    assert document["status"] == "ready", document
    requests = gateway.requests("/v1/embeddings")
    sizes = [len(request.body["input"]) for request in requests]
    assert sum(sizes) == document["chunk_count"] > 64
    assert max(sizes) == 64
    for request in requests:
        assert request.body["model"] == "text-embedding-3-small"
        assert request.body["dimensions"] == 256
        assert request.headers["authorization"] == f"Bearer {API_KEY}"


async def test_a_search_embeds_the_query_with_the_collections_model(client, admin, gateway):
    await add_document(client, admin.headers, "kb", "a", "Invoices are sent monthly.")
    await add_document(client, admin.headers, "kb", "b", "Parcels ship in two days.")
    await ingested(client, admin.headers, "kb", "b")
    before = gateway.call_count("/v1/embeddings")

    # the fake's vectors only match equal texts: the query equal to a chunk is its nearest
    hits = await search(client, admin.headers, "kb", query="Parcels ship in two days.", k=2)

    assert hits[0]["document_id"] == "b"
    assert hits[0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert gateway.call_count("/v1/embeddings") == before + 1
    assert gateway.last_request("/v1/embeddings").body["input"] == ["Parcels ship in two days."]


async def test_a_passing_provider_failure_is_retried(client, admin, gateway):
    gateway.push(Fail(503), endpoint="embeddings")

    await add_document(client, admin.headers, "kb", "a", "Invoices are sent monthly.")
    document = await ingested(client, admin.headers, "kb", "a")

    assert document["status"] == "ready"
    assert gateway.call_count("/v1/embeddings") == 2


async def test_a_provider_refusal_fails_the_document_with_the_reason(client, admin, gateway):
    gateway.push(Fail(400, f"input rejected for key {API_KEY}"), endpoint="embeddings")

    await add_document(client, admin.headers, "kb", "a", "Invoices are sent monthly.")
    document = await ingested(client, admin.headers, "kb", "a")

    assert document["status"] == "failed"
    assert "400" in document["error"]
    assert "input rejected" in document["error"]
    assert API_KEY not in document["error"]
    assert gateway.call_count("/v1/embeddings") == 1  # a 400 is not retried


async def test_a_search_failing_at_the_provider_is_a_502(client, admin, gateway):
    gateway.push(*[Fail(500)] * 3, endpoint="embeddings")

    response = await client.post(
        "/v1/collections/kb/search", headers=admin.headers, json={"query": "invoices"}
    )

    body = assert_problem(response, 502)
    assert API_KEY not in response.text
    assert body["errors"][0]["status"] == 500


async def test_a_deleted_connection_is_reported(client, admin, gateway):
    await client.delete("/v1/providers/gateway", headers=admin.headers)

    searched = await client.post(
        "/v1/collections/kb/search", headers=admin.headers, json={"query": "invoices"}
    )
    await add_document(client, admin.headers, "kb", "a", "Invoices are sent monthly.")
    document = await ingested(client, admin.headers, "kb", "a")

    assert "gateway" in assert_problem(searched, 409)["detail"]
    assert document["status"] == "failed"
    assert "gateway" in document["error"]


async def test_a_collection_naming_a_missing_connection_is_refused(client, admin):
    response = await client.post(
        "/v1/collections",
        headers=admin.headers,
        json={
            "name": "kb",
            "embedding": {
                "provider": "ghost",
                "model": "text-embedding-3-small",
                "dimensions": 256,
            },
        },
    )

    assert_names_field(assert_problem(response, 422), "body.embedding.provider")
