"""Tenants never see each other's collections, documents or chunks."""

from __future__ import annotations

from sqlalchemy import text

from tests.factories import make_key, make_tenant
from tests.helpers import assert_problem
from tests.knowledge.support import add_ready, make_collection, search

SECRET = "Bravo's internal refund escalation code is PURPLE-17."


async def test_a_search_never_returns_another_tenants_chunk(client, admin, session):
    bravo = await make_key(session, await make_tenant(session, "bravo"), ["admin"])
    for headers in (admin.headers, bravo.headers):  # same collection name, same document ids
        await make_collection(client, headers, "kb")
    await add_ready(client, admin.headers, "kb", {"refunds": "Refunds take ten days."})
    await add_ready(client, bravo.headers, "kb", {"refunds": SECRET, "other": SECRET * 2})

    for query in ("refund escalation code PURPLE-17", "PURPLE", "refunds"):
        hits = await search(client, admin.headers, "kb", query=query, k=50)
        assert [hit["text"] for hit in hits] == ["Refunds take ten days."]
        for_filter = await search(
            client, admin.headers, "kb", query=query, k=50, filter={"x": None}
        )
        assert for_filter == []
    bravo_chunks = await session.scalar(
        text("SELECT count(*) FROM knowledge_chunks WHERE text LIKE '%PURPLE%'")
    )
    assert bravo_chunks == 2
    counts = (await client.get("/v1/collections/kb", headers=admin.headers)).json()
    assert (counts["documents"], counts["chunks"]) == (1, 1)


async def test_another_tenants_collection_and_documents_are_404(client, admin, session):
    bravo = await make_key(session, await make_tenant(session, "bravo"), ["admin"])
    await make_collection(client, bravo.headers, "private")
    await add_ready(client, bravo.headers, "private", {"doc": SECRET})
    await make_collection(client, admin.headers, "kb")

    for method, path, body in [
        ("GET", "/v1/collections/private", None),
        ("DELETE", "/v1/collections/private", None),
        ("GET", "/v1/collections/private/documents", None),
        ("GET", "/v1/collections/private/documents/doc", None),
        ("DELETE", "/v1/collections/private/documents/doc", None),
        ("POST", "/v1/collections/private/documents", {"id": "doc", "text": "overwritten"}),
        ("POST", "/v1/collections/private/search", {"query": "PURPLE"}),
        ("GET", "/v1/collections/kb/documents/doc", None),
        ("DELETE", "/v1/collections/kb/documents/doc", None),
    ]:
        response = await client.request(method, path, headers=admin.headers, json=body)
        assert_problem(response, 404, where=f"{method} {path}")
        assert "PURPLE" not in response.text

    listed = await client.get("/v1/collections", headers=admin.headers)
    assert [c["name"] for c in listed.json()["items"]] == ["kb"]
    hits = await search(client, bravo.headers, "private", query="PURPLE")
    assert [hit["text"] for hit in hits] == [SECRET]  # untouched
