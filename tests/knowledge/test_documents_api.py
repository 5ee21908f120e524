"""Documents over the API: 202 then ready, progress, replace, unchanged, delete, limits."""

from __future__ import annotations

import base64
import io
import json

import pytest
from pypdf import PdfReader, PdfWriter
from sqlalchemy import text

from promptlogic.knowledge.schemas import MAX_METADATA_BYTES
from tests.helpers import assert_names_field, assert_problem, walk_pages
from tests.knowledge.pdfs import make_pdf
from tests.knowledge.support import add_document, add_ready, ingested, make_collection, search

HANDBOOK = """# Refunds

We refund unused items within 30 days of delivery.

## Exceptions

Sale items are final. Gift cards cannot be refunded.

# Shipping

Parcels leave our warehouse within two working days.
"""


@pytest.fixture
async def kb(client, admin) -> str:
    await make_collection(client, admin.headers, "kb")
    return "kb"


async def test_a_document_is_accepted_then_ingested(client, admin, kb):
    accepted = await add_document(
        client,
        admin.headers,
        kb,
        "handbook",
        HANDBOOK,
        format="markdown",
        metadata={"team": "support", "lang": "en"},
    )

    assert accepted["status"] == "pending"
    assert accepted["progress"] == {"chunks_embedded": 0, "chunks_total": None}
    assert accepted["chunk_count"] == 0
    ready = await ingested(client, admin.headers, kb, "handbook")
    assert ready["status"] == "ready"
    assert ready["error"] is None
    assert ready["chunk_count"] == 3
    assert ready["progress"] == {"chunks_embedded": 3, "chunks_total": 3}
    assert ready["metadata"] == {"team": "support", "lang": "en"}
    assert ready["format"] == "markdown"
    assert ready["characters"] == len(HANDBOOK)
    assert ready["ingested_at"] is not None
    hits = await search(client, admin.headers, kb, query="gift cards refunded", k=3)
    assert hits[0]["document_id"] == "handbook"
    assert hits[0]["heading"] == "Refunds > Exceptions"
    assert hits[0]["metadata"] == {"team": "support", "lang": "en"}


async def test_the_response_says_where_to_follow_the_document(client, admin, kb):
    response = await client.post(
        f"/v1/collections/{kb}/documents",
        headers=admin.headers,
        json={"id": "faq:billing@v2", "text": "Invoices are monthly."},
    )

    assert response.status_code == 202
    assert response.headers["location"] == "/v1/collections/kb/documents/faq:billing@v2"
    followed = await ingested(client, admin.headers, kb, "faq:billing@v2")
    assert followed["status"] == "ready"


async def test_an_empty_document_is_ready_with_no_chunks(client, admin, kb):
    await add_document(client, admin.headers, kb, "empty", "")
    await add_document(client, admin.headers, kb, "headings", "# A\n## B\n", format="markdown")

    for document_id in ("empty", "headings"):
        document = await ingested(client, admin.headers, kb, document_id)
        assert (document["status"], document["chunk_count"]) == ("ready", 0)
        assert document["progress"] == {"chunks_embedded": 0, "chunks_total": 0}


async def test_re_adding_replaces_the_chunks(client, admin, kb, session):
    await add_ready(client, admin.headers, kb, {"policy": "Refunds take ten days."})
    old_ids = {h["id"] for h in await search(client, admin.headers, kb, query="refunds")}

    await add_document(
        client, admin.headers, kb, "policy", "Exchanges are free for members.", metadata={"v": 2}
    )
    document = await ingested(client, admin.headers, kb, "policy")

    assert (document["status"], document["chunk_count"], document["metadata"]) == (
        "ready",
        1,
        {"v": 2},
    )
    hits = await search(client, admin.headers, kb, query="refunds exchanges", k=5)
    assert [h["text"] for h in hits] == ["Exchanges are free for members."]
    assert hits[0]["metadata"] == {"v": 2}
    assert not old_ids & {h["id"] for h in hits}
    assert await session.scalar(text("SELECT count(*) FROM knowledge_chunks")) == 1
    assert await session.scalar(text("SELECT generation FROM knowledge_documents")) == 2


async def test_the_same_content_again_changes_nothing(client, admin, kb, session):
    await add_ready(client, admin.headers, kb, {"policy": "Refunds take ten days."})
    before = await session.scalar(text("SELECT array_agg(id) FROM knowledge_chunks"))

    again = await add_document(
        client, admin.headers, kb, "policy", "Refunds take ten days.", expect=200
    )

    assert again["status"] == "ready"
    assert (await ingested(client, admin.headers, kb, "policy"))["chunk_count"] == 1
    assert await session.scalar(text("SELECT array_agg(id) FROM knowledge_chunks")) == before
    # other metadata is a change
    changed = await add_document(
        client, admin.headers, kb, "policy", "Refunds take ten days.", metadata={"a": 1}
    )
    assert changed["status"] == "pending"


async def test_delete_removes_the_document_from_search(client, admin, kb, session):
    await add_ready(client, admin.headers, kb, {"a": "Refunds take ten days.", "b": "Shipping."})

    response = await client.delete(f"/v1/collections/{kb}/documents/a", headers=admin.headers)

    assert response.status_code == 204
    assert_problem(
        await client.get(f"/v1/collections/{kb}/documents/a", headers=admin.headers), 404
    )
    hits = await search(client, admin.headers, kb, query="refunds ten days", k=5)
    assert [h["document_id"] for h in hits] == ["b"]
    assert await session.scalar(text("SELECT count(*) FROM knowledge_chunks")) == 1
    again = await client.delete(f"/v1/collections/{kb}/documents/a", headers=admin.headers)
    assert_problem(again, 404)


async def test_documents_are_listed_by_id_and_filtered_by_status(client, admin, kb):
    await add_ready(client, admin.headers, kb, {f"doc-{i}": f"Text {i}." for i in (3, 1, 2)})

    items, pages = await walk_pages(
        client, f"/v1/collections/{kb}/documents", admin.headers, limit=2
    )

    assert [item["id"] for item in items] == ["doc-1", "doc-2", "doc-3"]
    assert pages == 2
    assert all(item["status"] == "ready" for item in items)
    failed = await client.get(
        f"/v1/collections/{kb}/documents", headers=admin.headers, params={"status": "failed"}
    )
    assert failed.json() == {"items": [], "next_cursor": None}
    bad = await client.get(
        f"/v1/collections/{kb}/documents", headers=admin.headers, params={"status": "done"}
    )
    assert_names_field(assert_problem(bad, 422), "query.status")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "bad id", "text": "x"}, "body.id"),
        ({"id": "a/b", "text": "x"}, "body.id"),
        ({"id": "-a", "text": "x"}, "body.id"),
        ({"id": "a" * 201, "text": "x"}, "body.id"),
        ({"text": "x"}, "body.id"),
        ({"id": "a", "text": "x", "format": "docx"}, "body.format"),
        ({"id": "a", "text": "x", "metadata": []}, "body.metadata"),
        ({"id": "a", "text": "x", "metadata": {"k": "v" * MAX_METADATA_BYTES}}, "body.metadata"),
        ({"id": "a", "text": "x", "extra": 1}, "body.extra"),
    ],
)
async def test_bad_documents_are_refused_naming_the_field(client, admin, kb, session, body, field):
    response = await client.post(
        f"/v1/collections/{kb}/documents", headers=admin.headers, json=body
    )

    assert_names_field(assert_problem(response, 422), field)
    assert await session.scalar(text("SELECT count(*) FROM knowledge_documents")) == 0


async def test_text_beyond_the_limits_is_refused(client, admin, kb, app):
    limit = app.state.settings.max_body_bytes
    huge = {"id": "a", "text": "x" * (limit + 1)}

    response = await client.post(
        f"/v1/collections/{kb}/documents", headers=admin.headers, json=huge
    )

    assert_problem(response, 413)
    body = json.dumps({"id": "a", "text": "\u0000"})
    nul = await client.post(
        f"/v1/collections/{kb}/documents",
        headers={**admin.headers, "content-type": "application/json"},
        content=body,
    )
    assert_names_field(assert_problem(nul, 422), "body.text")


async def test_a_bad_document_path_is_refused(client, admin, kb):
    response = await client.get(f"/v1/collections/{kb}/documents/-x", headers=admin.headers)

    assert_names_field(assert_problem(response, 422), "path.document_id")


# PDF -------------------------------------------------------------------------------------


def as_base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_a_pdf_is_read_page_by_page(client, admin, kb):
    pdf = make_pdf(
        [["Refund policy (2024)", "Refunds take ten days."], ["Shipping leaves in two days."]]
    )

    accepted = await add_document(
        client,
        admin.headers,
        kb,
        "policy.pdf",
        None,
        format="pdf",
        content_base64=as_base64(pdf),
        metadata={"source": "upload"},
    )
    document = await ingested(client, admin.headers, kb, "policy.pdf")

    assert accepted["format"] == "pdf"
    assert document["status"] == "ready"
    assert document["characters"] == len(
        "Refund policy (2024)\nRefunds take ten days.\n\nShipping leaves in two days."
    )
    hits = await search(client, admin.headers, kb, query="how long do refunds take", k=1)
    assert hits[0]["document_id"] == "policy.pdf"
    assert "Refunds take ten days." in hits[0]["text"]
    # the same text again (even re-saved) is unchanged
    await add_document(
        client,
        admin.headers,
        kb,
        "policy.pdf",
        None,
        format="pdf",
        content_base64=as_base64(pdf),
        metadata={"source": "upload"},
        expect=200,
    )


def encrypted(pdf: bytes) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"format": "pdf"}, "body.content_base64", "required"),
        ({"format": "pdf", "text": "x", "content_base64": "eA=="}, "body.text", "not for"),
        ({"format": "text", "content_base64": "eA=="}, "body.content_base64", "only for"),
        ({"format": "markdown"}, "body.text", "required"),
        ({"format": "pdf", "content_base64": "not base64!"}, "body.content_base64", "base64"),
        ({"format": "pdf", "content_base64": "bm90IGEgcGRm"}, "body.content_base64", "readable"),
        (
            {"format": "pdf", "content_base64": as_base64(encrypted(make_pdf([["Secret."]])))},
            "body.content_base64",
            "password",
        ),
    ],
)
async def test_bad_pdfs_are_refused_naming_the_field(
    client, admin, kb, session, body, field, message
):
    response = await client.post(
        f"/v1/collections/{kb}/documents", headers=admin.headers, json={"id": "doc", **body}
    )

    problem = assert_problem(response, 422)
    assert_names_field(problem, field)
    assert message in problem["detail"]
    assert await session.scalar(text("SELECT count(*) FROM knowledge_documents")) == 0
