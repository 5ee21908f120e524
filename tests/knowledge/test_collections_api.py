"""Collections over the API: create, read, list, delete, validation, scopes, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.factories import make_key
from tests.helpers import assert_names_field, assert_problem, walk_pages
from tests.knowledge.support import add_ready, make_collection


async def test_a_collection_is_offline_with_384_dimensions_by_default(client, admin):
    created = await make_collection(client, admin.headers, "kb")

    assert created["name"] == "kb"
    assert created["embedding"] == {
        "provider": None,
        "model": "offline-hash-v1",
        "dimensions": 384,
    }
    assert created["chunking"] == {"max_tokens": 400, "overlap_tokens": 50}
    assert (created["documents"], created["chunks"]) == (0, 0)
    fetched = await client.get("/v1/collections/kb", headers=admin.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_embedding_and_chunking_are_chosen_at_creation(client, admin):
    created = await make_collection(
        client,
        admin.headers,
        "small",
        embedding={"dimensions": 256},
        chunking={"max_tokens": 200, "overlap_tokens": 0},
    )

    assert created["embedding"]["dimensions"] == 256
    assert created["chunking"] == {"max_tokens": 200, "overlap_tokens": 0}


async def test_get_counts_documents_and_chunks(client, admin):
    await make_collection(client, admin.headers, "kb")
    await add_ready(
        client,
        admin.headers,
        "kb",
        {"a": "# One\n\nFirst.\n\n# Two\n\nSecond.", "b": "Just one chunk."},
        format="markdown",
    )

    body = (await client.get("/v1/collections/kb", headers=admin.headers)).json()

    assert (body["documents"], body["chunks"], body["ingesting"], body["failed"]) == (2, 3, 0, 0)
    listed = (await client.get("/v1/collections", headers=admin.headers)).json()
    assert [(c["name"], c["documents"], c["chunks"]) for c in listed["items"]] == [("kb", 2, 3)]


async def test_the_list_is_paginated_by_name(client, admin):
    for name in ["c-3", "c-1", "c-2"]:
        await make_collection(client, admin.headers, name)

    items, pages = await walk_pages(client, "/v1/collections", admin.headers, limit=2)

    assert [item["name"] for item in items] == ["c-1", "c-2", "c-3"]
    assert pages == 2


async def test_a_taken_name_is_a_conflict(client, admin):
    await make_collection(client, admin.headers, "kb")

    response = await client.post("/v1/collections", headers=admin.headers, json={"name": "kb"})

    assert_problem(response, 409)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Not A Name"}, "body.name"),
        ({"name": "x" * 101}, "body.name"),
        ({"name": "kb", "embedding": {"dimensions": 300}}, "body.embedding.dimensions"),
        ({"name": "kb", "embedding": {"dimensions": 4096}}, "body.embedding.dimensions"),
        ({"name": "kb", "embedding": {"model": "text-embedding-3-small"}}, "body.embedding.model"),
        (
            {"name": "kb", "embedding": {"provider": "nope", "dimensions": 256}},
            "body.embedding.model",
        ),
        (
            {"name": "kb", "embedding": {"provider": "nope", "model": "m", "dimensions": 256}},
            "body.embedding.provider",
        ),
        (
            {"name": "kb", "embedding": {"provider": "nope", "model": "m"}},
            "body.embedding.dimensions",
        ),
        ({"name": "kb", "embedding": {"size": 3}}, "body.embedding.size"),
        ({"name": "kb", "chunking": {"max_tokens": 10}}, "body.chunking.max_tokens"),
        (
            {"name": "kb", "chunking": {"max_tokens": 100, "overlap_tokens": 60}},
            "body.chunking.overlap_tokens",
        ),
        ({"name": "kb", "color": "blue"}, "body.color"),
    ],
)
async def test_bad_collections_are_refused_naming_the_field(client, admin, session, body, field):
    response = await client.post("/v1/collections", headers=admin.headers, json=body)

    assert_names_field(assert_problem(response, 422), field)
    assert await session.scalar(text("SELECT count(*) FROM knowledge_collections")) == 0


async def test_delete_removes_documents_and_chunks(client, admin, session):
    await make_collection(client, admin.headers, "kb")
    await add_ready(client, admin.headers, "kb", {"a": "Some text."})

    response = await client.delete("/v1/collections/kb", headers=admin.headers)

    assert response.status_code == 204
    assert_problem(await client.get("/v1/collections/kb", headers=admin.headers), 404)
    for table in ("knowledge_collections", "knowledge_documents", "knowledge_chunks"):
        assert await session.scalar(text(f"SELECT count(*) FROM {table}")) == 0  # noqa: S608
    again = await client.delete("/v1/collections/kb", headers=admin.headers)
    assert_problem(again, 404)


async def test_an_unknown_collection_is_404_on_every_route(client, admin):
    for method, path, body in [
        ("GET", "/v1/collections/nope", None),
        ("DELETE", "/v1/collections/nope", None),
        ("GET", "/v1/collections/nope/documents", None),
        ("POST", "/v1/collections/nope/documents", {"id": "a", "text": "x"}),
        ("GET", "/v1/collections/nope/documents/a", None),
        ("DELETE", "/v1/collections/nope/documents/a", None),
        ("POST", "/v1/collections/nope/search", {"query": "x"}),
    ]:
        response = await client.request(method, path, headers=admin.headers, json=body)
        assert_problem(response, 404, where=f"{method} {path}")


async def test_reading_needs_read_and_changing_needs_write(client, session, tenant, admin):
    await make_collection(client, admin.headers, "kb")
    reader = await make_key(session, tenant, ["read"], name="reader")
    runner = await make_key(session, tenant, ["run"], name="runner")

    assert (await client.get("/v1/collections/kb", headers=reader.headers)).status_code == 200
    refused = await client.post("/v1/collections", headers=reader.headers, json={"name": "x"})
    assert_problem(refused, 403)
    assert_problem(await client.delete("/v1/collections/kb", headers=reader.headers), 403)
    add = await client.post(
        "/v1/collections/kb/documents", headers=reader.headers, json={"id": "a", "text": "x"}
    )
    assert_problem(add, 403)
    # an app's run key may search (retrieval) but not browse or change
    search = await client.post(
        "/v1/collections/kb/search", headers=runner.headers, json={"query": "x"}
    )
    assert search.status_code == 200
    assert_problem(await client.get("/v1/collections/kb", headers=runner.headers), 403)


async def test_changes_are_audited(client, admin):
    await make_collection(client, admin.headers, "kb")
    await add_ready(client, admin.headers, "kb", {"a": "Some text."})
    await client.delete("/v1/collections/kb/documents/a", headers=admin.headers)
    await client.delete("/v1/collections/kb", headers=admin.headers)

    events = (await client.get("/v1/audit", headers=admin.headers)).json()["items"]

    assert [(e["action"], e["target_id"]) for e in reversed(events)][-4:] == [
        ("collection.create", "kb"),
        ("document.add", "kb/a"),
        ("document.delete", "kb/a"),
        ("collection.delete", "kb"),
    ]
