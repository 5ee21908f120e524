"""Context records and knowledge collections in the UI, over HTTP."""

from __future__ import annotations

from promptlogic.knowledge.ingestion import wait_for_ingestions
from tests.factories import make_key, make_tenant


async def put(client, key, namespace, record_key, value):
    answer = await client.put(
        f"/v1/context/{namespace}/{record_key}", headers=key.headers, json={"value": value}
    )
    assert answer.status_code in (200, 201), answer.text


async def test_records_are_browsed_and_edited_with_their_version(client, admin, as_editor):
    await put(client, admin, "customers", "ada@example.com", {"plan": "pro"})
    listed = await as_editor.client.get("/ui/context")
    assert 'href="/ui/context/customers"' in listed.text
    records = await as_editor.client.get("/ui/context/customers?prefix=ada")
    assert "ada@example.com" in records.text
    editor = await as_editor.client.get("/ui/context/customers/ada@example.com")
    assert "&#34;plan&#34;: &#34;pro&#34;" in editor.text or "&quot;plan&quot;" in editor.text
    saved = await as_editor.client.post(
        "/ui/context-save",
        data={
            "csrf_token": as_editor.csrf,
            "namespace": "customers",
            "key": "ada@example.com",
            "value": '{"plan": "enterprise"}',
            "version": "1",
        },
    )
    assert saved.status_code == 303
    stored = await client.get("/v1/context/customers/ada@example.com", headers=admin.headers)
    assert stored.json()["value"] == {"plan": "enterprise"}
    assert stored.json()["version"] == 2


async def test_a_stale_editor_page_does_not_overwrite(client, admin, as_editor):
    await put(client, admin, "customers", "c-1", {"plan": "free"})
    await put(client, admin, "customers", "c-1", {"plan": "pro"})  # version 2 meanwhile
    stale = await as_editor.client.post(
        "/ui/context-save",
        data={
            "csrf_token": as_editor.csrf,
            "namespace": "customers",
            "key": "c-1",
            "value": '{"plan": "mine"}',
            "version": "1",
        },
    )
    assert stale.status_code == 409
    assert "mine" in stale.text  # what was typed is kept
    stored = await client.get("/v1/context/customers/c-1", headers=admin.headers)
    assert stored.json()["value"] == {"plan": "pro"}


async def test_bad_json_names_where(as_editor):
    answer = await as_editor.client.post(
        "/ui/context-save",
        data={
            "csrf_token": as_editor.csrf,
            "namespace": "customers",
            "key": "c-2",
            "value": '{"plan": }',
        },
    )
    assert answer.status_code == 422
    assert "line 1, column 10" in answer.text


async def test_a_viewer_reads_records_but_cannot_change_them(client, admin, as_viewer):
    await put(client, admin, "customers", "c-1", {"plan": "free"})
    page = await as_viewer.client.get("/ui/context/customers/c-1")
    assert page.status_code == 200
    assert ">Save<" not in page.text
    refused = await as_viewer.client.post(
        "/ui/context-save",
        data={
            "csrf_token": as_viewer.csrf,
            "namespace": "customers",
            "key": "c-1",
            "value": "{}",
            "version": "1",
        },
    )
    assert refused.status_code == 403


async def test_another_tenants_records_and_collections_are_not_found(session, client, as_owner):
    other = await make_tenant(session, "globex")
    key = await make_key(session, other, ["admin"], name="globex-admin")
    await put(client, key, "customers", "secret", {"plan": "hidden"})
    await client.post("/v1/collections", headers=key.headers, json={"name": "their-kb"})
    assert (await as_owner.client.get("/ui/context/customers/secret")).status_code == 404
    assert "secret" not in (await as_owner.client.get("/ui/context/customers")).text
    assert (await as_owner.client.get("/ui/knowledge/their-kb")).status_code == 404
    assert "their-kb" not in (await as_owner.client.get("/ui/knowledge")).text


async def test_a_collection_takes_a_document_and_shows_ranked_chunks(as_editor):
    created = await as_editor.client.post(
        "/ui/knowledge", data={"csrf_token": as_editor.csrf, "name": "kb"}
    )
    assert created.status_code == 303
    for doc_id, text in (
        ("refunds", "Refunds are paid within 30 days of delivery."),
        ("shipping", "Parcels ship from Rotterdam every weekday."),
    ):
        added = await as_editor.client.post(
            "/ui/knowledge/kb/documents",
            data={"csrf_token": as_editor.csrf, "document_id": doc_id, "text": text},
        )
        assert added.status_code == 303, added.text
    upload = await as_editor.client.post(
        "/ui/knowledge/kb/documents",
        data={"csrf_token": as_editor.csrf, "document_id": "faq", "metadata": '{"lang": "en"}'},
        files={"file": ("faq.md", b"# Returns\n\nReturn labels are free.", "text/markdown")},
    )
    assert upload.status_code == 303, upload.text
    await wait_for_ingestions()
    page = await as_editor.client.get("/ui/knowledge/kb")
    assert page.text.count(">ready<") == 3
    results = await as_editor.client.get("/ui/knowledge/kb?q=when+are+refunds+paid")
    first = results.text.index('<li class="hit">')
    assert "refunds" in results.text[first : first + 400]
    bad = await as_editor.client.post(
        "/ui/knowledge/kb/documents",
        data={"csrf_token": as_editor.csrf, "document_id": "x", "text": "y", "metadata": "[1]"},
    )
    assert bad.status_code == 422


async def test_another_tenants_record_and_document_cannot_be_deleted(session, client, as_owner):
    other = await make_tenant(session, "globex")
    key = await make_key(session, other, ["admin"], name="globex-admin")
    await put(client, key, "customers", "secret", {"plan": "hidden"})
    await client.post("/v1/collections", headers=key.headers, json={"name": "their-kb"})
    doc = {"id": "handbook", "text": "Their handbook."}
    await client.post("/v1/collections/their-kb/documents", headers=key.headers, json=doc)
    record = await as_owner.client.post(
        "/ui/context-delete",
        data={"csrf_token": as_owner.csrf, "namespace": "customers", "key": "secret", "version": 1},
    )
    assert record.status_code == 404
    document = await as_owner.client.post(
        "/ui/knowledge/their-kb/documents/delete",
        data={"csrf_token": as_owner.csrf, "document_id": "handbook"},
    )
    assert document.status_code == 404
    kept = await client.get("/v1/context/customers/secret", headers=key.headers)
    assert kept.status_code == 200
    still = await client.get("/v1/collections/their-kb/documents/handbook", headers=key.headers)
    assert still.status_code == 200
